"""Convert official SemanticStyleGAN checkpoints into this package's generator / discriminator.

An official checkpoint is `torch.save({'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'})`, with
`args` a pickled argparse.Namespace. PyTorch >= 2.6 loads with weights_only=True, whose
unpickler refuses every class not allow-listed, Namespace included; we allow exactly that one
class (torch.serialization.safe_globals), so a checkpoint cannot run code while loading. A file
that pickles anything else fails with a clear error; pass trusted=True only for files you trust.

Official generator keys (K classes, L local layers, per the public repository): style.{1..8}.*
(mapping), pos_embed.weights (one embedding shared by all local nets), local_nets.{k}.linears.{j}
.conv.{weight, modulation.weight, modulation.bias} + .activate.bias, local_nets.{k}.to_feat.*,
local_nets.{k}.to_depth.* (k >= 1), render_net.convs.{j}.*, render_net.noises.noise_{j},
render_net.to_rgbs.{i}.*, render_net.to_segs.{i}.*, plus blur-kernel buffers (*.kernel), which
are checked to be the [1, 3, 3, 1] filter and dropped. Per-class tensors are stacked along K.
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import re
from typing import Any, Mapping

import torch

from swiftavatar.models.discriminator import Discriminator, DiscriminatorConfig
from swiftavatar.models.generator import GeneratorConfig, SemanticGenerator
from swiftavatar.models.layers import make_blur_kernel

Tensor = torch.Tensor


class OfficialCheckpointError(ValueError):
    """The checkpoint does not have the official SemanticStyleGAN layout we convert."""


def read_checkpoint(path_or_dict: str | os.PathLike | Mapping[str, Any], *,
                    trusted: bool = False) -> Mapping[str, Any]:
    """Load an official checkpoint onto the CPU (or pass through an already loaded dict)."""
    if isinstance(path_or_dict, Mapping):
        return path_or_dict
    if trusted:
        return torch.load(path_or_dict, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path_or_dict, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise OfficialCheckpointError(
            f"{path_or_dict}: holds objects other than tensors and argparse.Namespace ({err}); "
            "if you trust the file, call again with trusted=True") from err


def load_official_checkpoint(path_or_dict: str | os.PathLike | Mapping[str, Any], *,
                             key: str = "g_ema", trusted: bool = False
                             ) -> tuple[GeneratorConfig, dict[str, Tensor]]:
    """Official checkpoint -> (GeneratorConfig, state dict for SemanticGenerator)."""
    ckpt = read_checkpoint(path_or_dict, trusted=trusted)
    for needed in (key, "args"):
        if needed not in ckpt:
            raise OfficialCheckpointError(f"checkpoint has no '{needed}' entry (found "
                                          f"{sorted(ckpt)}); is it an official one?")
    cfg = config_from_official(ckpt[key], ckpt["args"])
    return cfg, _convert_generator(ckpt[key], cfg)


def convert_official_state_dict(sd: Mapping[str, Tensor], args: Any) -> dict[str, Tensor]:
    """Official generator state dict + its args (Namespace or mapping) -> our state dict."""
    return _convert_generator(sd, config_from_official(sd, args))


def _arg(a: Mapping[str, Any], name: str) -> Any:
    if name not in a:
        raise OfficialCheckpointError(f"checkpoint args lack '{name}'")
    return a[name]


def config_from_official(sd: Mapping[str, Tensor], args: Any) -> GeneratorConfig:
    """Build the GeneratorConfig from the official args, cross-checked with tensor shapes."""
    a = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    for k in ("style.1.weight", "pos_embed.weights", "local_nets.0.to_feat.conv.weight"):
        if k not in sd:
            raise OfficialCheckpointError(f"state dict lacks '{k}': not an official generator")
    shapes = {
        "latent": sd["style.1.weight"].shape[0],
        "n_mlp": len({k.split(".")[1] for k in sd if k.startswith("style.")}),
        "local_channel": sd["pos_embed.weights"].shape[0],
        "coarse_channel": sd["local_nets.0.to_feat.conv.weight"].shape[0],
        "seg_dim": len({k.split(".")[1] for k in sd if k.startswith("local_nets.")}),
        "local_layers": len({k.split(".")[3] for k in sd if k.startswith("local_nets.0.linears.")}),
    }
    for name, value in shapes.items():
        if name in a and int(a[name]) != value:
            raise OfficialCheckpointError(f"args.{name}={a[name]} but the tensors say {value}")
    size, min_feat = int(_arg(a, "size")), int(_arg(a, "min_feat_size"))
    n_stages = int(math.log2(size // min_feat))
    widths = []
    for i in range(n_stages):
        k = f"render_net.convs.{2 * i}.weight"
        if k not in sd:
            raise OfficialCheckpointError(f"state dict lacks '{k}' (size {size}, min_feat_size "
                                          f"{min_feat} need {n_stages} render stages)")
        widths.append(sd[k].shape[0])
    in_feats = sd["pos_embed.weights"].shape[1]
    freqs = (in_feats // 2 - 1) // 2
    try:
        return GeneratorConfig(
            size=size, grid=int(_arg(a, "coarse_size")), min_feat_size=min_feat,
            style_dim=shapes["latent"], n_mlp=shapes["n_mlp"], num_classes=shapes["seg_dim"],
            local_channels=shapes["local_channel"], local_layers=shapes["local_layers"],
            base_layers=int(_arg(a, "base_layers")), depth_layers=int(_arg(a, "depth_layers")),
            feature_channels=shapes["coarse_channel"], render_channels=tuple(widths),
            channel_multiplier=int(a.get("channel_multiplier", 2)),
            pos_freqs=None if freqs == int(math.log2(size)) else freqs,
            residual_refine=bool(_arg(a, "residual_refine")),
            transparent_classes=tuple(int(c) for c in _arg(a, "transparent_dims")),
            detach_texture=bool(a.get("detach_texture", False)))
    except ValueError as err:
        raise OfficialCheckpointError(f"checkpoint args give an invalid config: {err}") from err


class _Puller:
    """Takes official tensors by key, checking shapes and recording what was used or absent."""

    def __init__(self, sd: Mapping[str, Tensor]):
        self.sd, self.used = sd, set()
        self.missing: list[str] = []
        self.bad: list[str] = []

    def __call__(self, key: str, shape: tuple[int, ...]) -> Tensor | None:
        if key not in self.sd:
            self.missing.append(key)
            return None
        self.used.add(key)
        t = self.sd[key]
        if tuple(t.shape) != tuple(shape):
            self.bad.append(f"{key}: {tuple(t.shape)}, expected {tuple(shape)}")
            return None
        return t.detach().to(torch.float32)

    def blur_kernels(self, pattern: str) -> None:
        """Consume every kernel buffer matching `pattern` after checking its taps."""
        ref = make_blur_kernel()
        for key in self.sd:
            if re.fullmatch(pattern, key):
                self.used.add(key)
                t = self.sd[key].to(torch.float32)
                if t.shape != ref.shape or not torch.allclose(t / t.sum(), ref, atol=1e-6):
                    self.bad.append(f"{key}: blur kernel is not the [1, 3, 3, 1] filter")

    def finish(self, ours: dict[str, Tensor | None], model: torch.nn.Module, what: str
               ) -> dict[str, Tensor]:
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        unexpected = sorted(set(self.sd) - self.used)
        unfilled = sorted(k for k in expected if ours.get(k) is None)
        self.bad += [f"{k}: converted {tuple(v.shape)}, model has {expected[k]}"
                     for k, v in ours.items() if v is not None and k in expected
                     and tuple(v.shape) != expected[k]]
        extra = sorted(set(ours) - set(expected))
        if self.missing or unexpected or unfilled or self.bad or extra:
            parts = [f"{name} ({len(v)}): {', '.join(v[:20])}{' ...' if len(v) > 20 else ''}"
                     for name, v in (("missing official keys", self.missing),
                                     ("unexpected official keys", unexpected),
                                     ("shape mismatches", self.bad),
                                     ("unfilled model keys", unfilled),
                                     ("keys the model lacks", extra)) if v]
            raise OfficialCheckpointError(f"cannot convert the official {what}: "
                                          + "; ".join(parts))
        return {k: v for k, v in ours.items()}  # type: ignore[misc]


def _stack(parts: list[Tensor | None], shape: tuple[int, ...]) -> Tensor | None:
    if any(p is None for p in parts):
        return None
    return torch.stack([p.reshape(shape) for p in parts])  # type: ignore[union-attr]


def _convert_generator(sd: Mapping[str, Tensor], cfg: GeneratorConfig) -> dict[str, Tensor]:
    K, L, C, D, Fc = (cfg.num_classes, cfg.local_layers, cfg.local_channels, cfg.style_dim,
                      cfg.feature_channels)
    pull, out = _Puller(sd), {}
    for i in range(cfg.n_mlp):
        out[f"style.layers.{i}.weight"] = pull(f"style.{i + 1}.weight", (D, D))
        out[f"style.layers.{i}.bias"] = pull(f"style.{i + 1}.bias", (D,))
    emb = pull("pos_embed.weights", (C, 2 * (2 * cfg.n_freqs + 1), 1, 1))
    out["local.pos_embed.weight"] = None if emb is None else emb[:, :, 0, 0]
    lin = "local_nets.{k}.linears.{j}."
    for ours, suffix, shape in (("weight", "conv.weight", (1, C, C, 1, 1)),
                                ("mod_weight", "conv.modulation.weight", (C, D)),
                                ("mod_bias", "conv.modulation.bias", (C,)),
                                ("act_bias", "activate.bias", (C,))):
        target = (C, C) if ours == "weight" else shape
        layers = [_stack([pull(lin.format(k=k, j=j) + suffix, shape) for k in range(K)], target)
                  for j in range(L)]
        out[f"local.{ours}"] = None if any(t is None for t in layers) else torch.stack(layers)
    for head, classes, width, name in (("to_feat", range(K), Fc, "feat"),
                                       ("to_depth", range(1, K), 1, "depth")):
        pre = "local_nets.{k}." + head + "."
        out[f"local.{name}_weight"] = _stack(
            [pull(pre.format(k=k) + "conv.weight", (width, C, 1, 1)) for k in classes],
            (width, C) if width > 1 else (C,))
        out[f"local.{name}_mod"] = _stack(
            [pull(pre.format(k=k) + "conv.modulation", (1, C, 1, 1)) for k in classes], (C,))
        out[f"local.{name}_bias"] = _stack(
            [pull(pre.format(k=k) + "bias", (1, width, 1, 1)) for k in classes],
            (width,) if width > 1 else ())
    pull.blur_kernels(r"local_nets\.\d+\.to_(feat|depth)\.upsample\.kernel")

    in_ch = Fc
    for i, (res, w) in enumerate(zip(cfg.stage_sizes, cfg.render_widths)):
        in_ch += Fc if res // 2 == cfg.grid else 0
        for j, cin in ((2 * i, in_ch), (2 * i + 1, w)):
            src, dst = f"render_net.convs.{j}.", f"render.convs.{j}."
            out[dst + "weight"] = pull(src + "weight", (w, cin, 3, 3))
            mod = pull(src + "modulation", (1, cin, 1, 1))
            out[dst + "modulation"] = None if mod is None else mod.reshape(cin)
            out[dst + "noise_weight"] = pull(src + "noise.weight", (1,))
            out[dst + "act_bias"] = pull(src + "activate.bias", (w,))
            out[f"render.noise_{j}"] = pull(f"render_net.noises.noise_{j}", (1, 1, res, res))
        for head, n_out in (("to_rgbs", 3), ("to_segs", K)):
            src, dst = f"render_net.{head}.{i}.", f"render.{head}.{i}."
            out[dst + "conv.weight"] = pull(src + "conv.weight", (n_out, w, 1, 1))
            mod = pull(src + "conv.modulation", (1, w, 1, 1))
            out[dst + "conv.modulation"] = None if mod is None else mod.reshape(w)
            bias = pull(src + "bias", (1, n_out, 1, 1))
            out[dst + "bias"] = None if bias is None else bias.reshape(n_out)
        in_ch = w
    pull.blur_kernels(r"render_net\.(convs\.\d+\.blur|to_(rgbs|segs)\.\d+\.upsample)\.kernel")
    with torch.device("meta"):
        model = SemanticGenerator(cfg)
    return pull.finish(out, model, "generator")


# Official DualBranchDiscriminator key -> ours (ConvLayer is an nn.Sequential there).
_D_RULES = [
    (r"convs_(img|seg)\.0\.0\.weight", r"\1.0.conv.weight"),
    (r"convs_(img|seg)\.0\.1\.bias", r"\1.0.act_bias"),
    (r"convs_(img|seg)\.(\d+)\.conv1\.0\.weight", r"\1.\2.conv1.conv.weight"),
    (r"convs_(img|seg)\.(\d+)\.conv1\.1\.bias", r"\1.\2.conv1.act_bias"),
    (r"convs_(img|seg)\.(\d+)\.conv2\.1\.weight", r"\1.\2.conv2.conv.weight"),
    (r"convs_(img|seg)\.(\d+)\.conv2\.2\.bias", r"\1.\2.conv2.act_bias"),
    (r"convs_(img|seg)\.(\d+)\.skip\.1\.weight", r"\1.\2.skip.conv.weight"),
    (r"final_conv\.0\.weight", "final_conv.conv.weight"),
    (r"final_conv\.1\.bias", "final_conv.act_bias"),
    (r"final_linear\.([01])\.(weight|bias)", r"final_linear.\1.\2"),
]


def convert_official_discriminator(sd: Mapping[str, Tensor], *, seg: bool = True
                                   ) -> tuple[DiscriminatorConfig, dict[str, Tensor]]:
    """Official DualBranchDiscriminator state dict -> (DiscriminatorConfig, our state dict).

    seg=False keeps the image branch only and drops `convs_seg.*` (image-only adaptation).
    """
    if "convs_img.0.0.weight" not in sd:
        raise OfficialCheckpointError("state dict lacks 'convs_img.0.0.weight': not an "
                                      "official DualBranchDiscriminator")
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("convs_img.")}) - 1
    size = 2 ** (n_blocks + 2)
    widths = [sd["convs_img.0.0.weight"].shape[0]]
    widths += [sd[f"convs_img.{b}.conv2.1.weight"].shape[0] for b in range(1, n_blocks + 1)
               if f"convs_img.{b}.conv2.1.weight" in sd]
    n_cls = sd["convs_seg.0.0.weight"].shape[1] if "convs_seg.0.0.weight" in sd else 13
    try:
        cfg = DiscriminatorConfig(size=size, num_classes=n_cls, seg=seg, channels=tuple(widths))
    except ValueError as err:
        raise OfficialCheckpointError(f"discriminator shapes give an invalid config: {err}"
                                      ) from err
    with torch.device("meta"):
        model = Discriminator(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    pull, out = _Puller(sd), {}
    for key in sd:
        if key.startswith("convs_seg.") and not seg:
            pull.used.add(key)
            continue
        for pattern, repl in _D_RULES:
            if re.fullmatch(pattern, key):
                ours = re.sub(pattern, repl, key).replace("img.", "image_branch.", 1)
                ours = ours.replace("seg.", "seg_branch.", 1) if ours.startswith("seg.") else ours
                out[ours] = pull(key, expected.get(ours, tuple(sd[key].shape)))
                break
    pull.blur_kernels(r"convs_(img|seg)\.\d+\.(conv2|skip)\.0\.kernel")
    return cfg, pull.finish(out, model, "discriminator")
