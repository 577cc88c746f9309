"""Self-describing generator-training checkpoints.

A checkpoint directory holds `checkpoint.pt` (torch.save of a dict of state dicts, the
constructor configs as plain dicts, the step, the whole run config and w_mean of G_ema, and
for a G_avatar the w~_mean start codes of inversion, `w_tilde`: see `w_tilde_entries`),
`meta.json` (the same without tensors, readable without torch) and `sample.png` (the sample
grid at that step). Loading uses map_location="cpu" and weights_only=True: a checkpoint can hold
tensors and plain containers only, never code.

Layout of a run directory (see actors.train_generator):
    config.json               the resolved run config
    samples/step-0001000.png  sample grids
    data/                     the training images as Parquet, when the run made them
    train/checkpoint_0001000/ Ray Train's checkpoints (one directory per saved step)
    summary.json              the last run's result
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from swiftavatar import atomic
from swiftavatar.rundir import find_checkpoint_file, list_checkpoint_dirs

from swiftavatar.models import (Discriminator, GeneratorConfig,
                                SemanticGenerator, convert_official_discriminator,
                                load_official_checkpoint)
from swiftavatar.safe_load import safe_torch_load

FORMAT = "swiftavatar.gan.v1"
CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "meta.json"
SAMPLE_FILE = "sample.png"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
SAMPLES_DIR = "samples"
RAY_RUN_NAME = "train"
W_TILDE_KEY = "w_tilde"  # a G_avatar's stored w~_mean entries (w_tilde_entries)
EXPECTED = ("a SwiftAvatar generator checkpoint written by `swiftavatar train-generator` "
            "(a torch.save zip of tensors and plain values) or an official SemanticStyleGAN one")


class CheckpointError(ValueError):
    """A path holds no usable generator checkpoint; the message says what to pass instead."""


def checkpoint_dir_name(step: int) -> str:
    return f"checkpoint_{step:07d}"


def sample_name(step: int) -> str:
    return f"step-{step:07d}.png"


def make_payload(*, g: torch.nn.Module, d: torch.nn.Module, g_ema: SemanticGenerator,
                 g_opt: torch.optim.Optimizer, d_opt: torch.optim.Optimizer, step: int,
                 images_seen: int, mean_path_length: float, run_config: Mapping[str, Any],
                 w_mean: torch.Tensor) -> dict[str, Any]:
    """Everything a restart or a later stage needs, as tensors and plain containers."""
    import dataclasses

    assert w_mean.shape == (1, g_ema.config.style_dim), w_mean.shape
    cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}  # noqa: E731
    return {
        "format": FORMAT,
        "g": cpu(g.state_dict()),
        "d": cpu(d.state_dict()),
        "g_ema": cpu(g_ema.state_dict()),
        "g_optim": g_opt.state_dict(),
        "d_optim": d_opt.state_dict(),
        "generator_config": dataclasses.asdict(g_ema.config),
        "discriminator_config": dataclasses.asdict(d.config),
        "step": int(step),
        "images_seen": int(images_seen),
        "mean_path_length": float(mean_path_length),
        "run_config": json.loads(json.dumps(dict(run_config))),  # plain JSON types only
        "w_mean": w_mean.detach().cpu(),                         # (1, D)
    }


def meta_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a payload (no state dicts)."""
    keys = ("format", "step", "images_seen", "mean_path_length", "generator_config",
            "discriminator_config", "run_config")
    meta = {k: payload.get(k) for k in keys}
    meta["domain"] = (payload.get("run_config") or {}).get("domain")
    return meta


def save_checkpoint(directory: str | Path, payload: Mapping[str, Any],
                    sample_png: bytes | None = None) -> Path:
    """Write checkpoint.pt, meta.json (and sample.png) into `directory`, each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic.torch_save(directory / CHECKPOINT_FILE, dict(payload))
    atomic.write_json(directory / META_FILE, meta_of(payload))
    if sample_png is not None:
        atomic.write_bytes(directory / SAMPLE_FILE, sample_png)
    return directory / CHECKPOINT_FILE


def release_payload(payload: Mapping[str, Any], *, half: bool = True,
                    keep_discriminator: bool = True) -> dict[str, Any]:
    """A checkpoint to ship: G_ema (and D, to finetune from), configs, step, run config and
    w_mean, without the raw G or the optimiser states. `half` stores the weights as float16
    (half the size; they are loaded back into float32 modules). Resuming training from a
    release starts new optimisers."""
    keep = ("format", "generator_config", "discriminator_config", "step", "images_seen",
            "mean_path_length", "run_config", "w_mean", W_TILDE_KEY, "g_ema")
    out = {k: payload[k] for k in keep if k in payload}
    if keep_discriminator and "d" in payload:
        out["d"] = payload["d"]
    else:
        out.pop("discriminator_config", None)
    cast = (lambda t: t.half() if t.is_floating_point() else t) if half else (lambda t: t)
    for k in ("g_ema", "d"):
        if k in out:
            out[k] = {name: cast(t.detach().cpu()) for name, t in out[k].items()}
    from swiftavatar.pretrained import portable

    if isinstance(out.get("run_config"), dict):  # no path of the machine it was made on
        out["run_config"] = portable(out["run_config"])
    out["release"] = {"dtype": "float16" if half else "float32"}
    return out


def list_checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """{step: checkpoint dir} under a run directory (its train/) or a Ray run directory."""
    return list_checkpoint_dirs(run_dir, RAY_RUN_NAME, CHECKPOINT_FILE)


def checkpoint_spec(path: str) -> str:
    """A checkpoint argument made usable from any working directory: local paths become
    absolute; URIs and `pretrained:NAME` stay as they are (resolved where they are read)."""
    if "://" in path or path.startswith("pretrained:"):
        return path
    return os.path.abspath(os.path.expanduser(path))


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint file a path names: the file itself, a checkpoint directory, or a run
    directory (its latest checkpoint), or `pretrained:NAME` (a generator shipped with the
    project, swiftavatar.pretrained)."""
    if str(path).startswith("pretrained:"):
        from swiftavatar.pretrained import GENERATOR, pretrained_path

        try:
            return pretrained_path(str(path).split(":", 1)[1], GENERATOR)
        except KeyError as err:
            raise CheckpointError(str(err.args[0])) from None
    return find_checkpoint_file(
        path, RAY_RUN_NAME, CHECKPOINT_FILE,
        lambda msg: CheckpointError(msg + (": train one with `swiftavatar train-generator`"
                                           if "holds no" in msg else "")))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU with weights_only=True. Official SemanticStyleGAN files
    are accepted too (converted: 'official': True, no run config, no optimiser state)."""
    file = find_checkpoint(path)
    # official files hold their training flags as an argparse.Namespace: allowed, no code
    payload = safe_torch_load(file, EXPECTED, CheckpointError, allow=(argparse.Namespace,))
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{file}: holds a {type(payload).__name__}, not a checkpoint dict")
    if payload.get("format") == FORMAT:
        return {**payload, "path": str(file), "official": False}
    if "g_ema" in payload and "args" in payload:
        return _from_official(payload, file)
    raise CheckpointError(f"{file}: unknown checkpoint layout (keys {sorted(payload)[:8]}); "
                          f"expected one written by `swiftavatar train-generator`")


def _from_official(ckpt: Mapping[str, Any], file: Path) -> dict[str, Any]:
    import dataclasses

    cfg, g_ema = load_official_checkpoint(ckpt)
    out: dict[str, Any] = {"format": "official", "g_ema": g_ema, "path": str(file),
                           "official": True, "generator_config": dataclasses.asdict(cfg),
                           "step": 0, "images_seen": 0, "run_config": None, "w_mean": None}
    if "d" in ckpt:
        dcfg, d_sd = convert_official_discriminator(ckpt["d"], seg=True)
        out["d"], out["discriminator_config"] = d_sd, dataclasses.asdict(dcfg)
    return out


def generator_config_of(payload: Mapping[str, Any]) -> GeneratorConfig:
    from swiftavatar.training.gan_config import generator_config_from_dict
    return generator_config_from_dict(payload["generator_config"])


def load_generator(path: str | Path, which: str = "g_ema",
                   device: str | torch.device = "cpu") -> tuple[SemanticGenerator, dict]:
    """(generator in eval mode, meta) from a checkpoint file, checkpoint dir or run dir.

    which: "g_ema" (the averaged generator, the one to use) or "g" (the raw trained one).
    meta: step, images_seen, domain, generator_config, discriminator_config, run_config,
    w_mean ((1, D) tensor of G_ema's mean w, or None for official files) and path.
    """
    payload = read_checkpoint(path)
    if which not in ("g_ema", "g") or which not in payload:
        raise CheckpointError(f"{payload['path']} has no '{which}' generator")
    g = SemanticGenerator(generator_config_of(payload))
    g.load_state_dict(payload[which])
    g.eval().to(device)
    meta = meta_of(payload)
    meta["w_mean"] = payload.get("w_mean")
    meta[W_TILDE_KEY] = w_tilde_entries(payload)
    meta["path"] = payload["path"]
    return g, meta


# ---- w~_mean, stored with a G_avatar ---------------------------------------------------------

def w_tilde_entries(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The w~_mean entries a checkpoint stores (none for older or official files): each
    {"n": draws, "seed": seed of the draws, "w": (1, D) float32 tensor, "rule", "threshold",
    "kept"} (swiftavatar.production.mean_latent.modified_mean_latent's result)."""
    return [dict(e) for e in payload.get(W_TILDE_KEY) or []]


def with_w_tilde(payload: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with `entry` stored (replacing one with the same n and seed)."""
    keep = [e for e in w_tilde_entries(payload)
            if (e["n"], e["seed"]) != (entry["n"], entry["seed"])]
    return {**payload, W_TILDE_KEY: keep + [dict(entry)]}


def discriminator_from(payload: Mapping[str, Any], seg: bool) -> Discriminator | None:
    """The checkpoint's discriminator, with the mask branch dropped when `seg` is False
    (image-only domain adaptation). None when the checkpoint has none."""
    import dataclasses

    from swiftavatar.training.gan_config import discriminator_config_from_dict

    if "d" not in payload or not payload.get("discriminator_config"):
        return None
    cfg = discriminator_config_from_dict(payload["discriminator_config"])
    state = dict(payload["d"])
    if not seg:
        if cfg.seg:
            state = {k: v for k, v in state.items() if not k.startswith("seg_branch.")}
        cfg = dataclasses.replace(cfg, seg=False)
    elif not cfg.seg:
        return None  # an image-only D cannot start a two-branch one
    d = Discriminator(cfg)
    d.load_state_dict(state)
    return d


__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "CheckpointError", "checkpoint_spec", "FORMAT", "META_FILE",
           "RAY_RUN_NAME", "SAMPLES_DIR", "SAMPLE_FILE", "SUMMARY_FILE", "checkpoint_dir_name",
           "discriminator_from", "find_checkpoint", "list_checkpoints", "load_generator",
           "make_payload", "meta_of", "release_payload", "read_checkpoint", "sample_name", "save_checkpoint",
           "W_TILDE_KEY", "w_tilde_entries", "with_w_tilde"]
