"""Converter for official SemanticStyleGAN checkpoints, on a checkpoint of the official layout
built here from a tiny config (random tensors under the official key names and shapes)."""
from __future__ import annotations

import argparse
import datetime
import math

import pytest
import torch
import torch.nn.functional as F

from swiftavatar.models import (
    Discriminator, OfficialCheckpointError, SemanticGenerator, convert_official_discriminator,
    convert_official_state_dict, load_official_checkpoint)

# The official repository's width per resolution (x channel_multiplier from 64 px up).
WIDTH = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32}


def official_args(**over) -> argparse.Namespace:
    a = dict(size=32, latent=24, n_mlp=3, channel_multiplier=2, seg_dim=13, local_layers=5,
             base_layers=2, depth_layers=3, local_channel=8, coarse_channel=16, coarse_size=8,
             min_feat_size=4, residual_refine=True, detach_texture=False,
             transparent_dims=(10, 12), dataset="data/lmdb_celebamaskhq_512", lr=0.002)
    a.update(over)
    return argparse.Namespace(**a)


def _blur(gain: float) -> torch.Tensor:
    t = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = t[:, None] * t[None, :]
    return k / k.sum() * gain


def official_generator_sd(a: argparse.Namespace, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the official SemanticGenerator names and shapes."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)            # noqa: E731
    D, K, L, C, Fc = a.latent, a.seg_dim, a.local_layers, a.local_channel, a.coarse_channel
    sd = {}
    for i in range(1, a.n_mlp + 1):                         # index 0 is the PixelNorm
        sd[f"style.{i}.weight"], sd[f"style.{i}.bias"] = r(D, D), 0.1 * r(D)
    sd["pos_embed.weights"] = r(C, 2 * (2 * int(math.log2(a.size)) + 1), 1, 1)
    for k in range(K):
        for j in range(L):
            p = f"local_nets.{k}.linears.{j}."
            sd[p + "conv.weight"] = r(1, C, C, 1, 1)
            sd[p + "conv.modulation.weight"] = r(C, D)
            sd[p + "conv.modulation.bias"] = 1 + 0.1 * r(C)
            sd[p + "activate.bias"] = 0.1 * r(C)
        for head, out in [("to_feat", Fc)] + ([("to_depth", 1)] if k > 0 else []):
            p = f"local_nets.{k}.{head}."
            sd[p + "upsample.kernel"] = _blur(4.0)
            sd[p + "conv.weight"] = r(out, C, 1, 1)
            sd[p + "conv.modulation"] = 1 + 0.1 * r(1, C, 1, 1)
            sd[p + "bias"] = 0.1 * r(1, out, 1, 1)
    in_ch, n_stages = Fc, int(math.log2(a.size // a.min_feat_size))
    for i in range(n_stages):
        res = a.min_feat_size * 2 ** (i + 1)
        out = WIDTH[res] * (a.channel_multiplier if res >= 64 else 1)
        in_ch += Fc if res // 2 == a.coarse_size else 0
        for j, cin in ((2 * i, in_ch), (2 * i + 1, out)):
            p = f"render_net.convs.{j}."
            if j == 2 * i:
                sd[p + "blur.kernel"] = _blur(4.0)
            sd[p + "weight"] = r(out, cin, 3, 3)
            sd[p + "modulation"] = 1 + 0.1 * r(1, cin, 1, 1)
            sd[p + "noise.weight"] = 0.1 * r(1)
            sd[p + "activate.bias"] = 0.1 * r(out)
            sd[f"render_net.noises.noise_{j}"] = r(1, 1, res, res)
        for head, n_out in (("to_rgbs", 3), ("to_segs", K)):
            p = f"render_net.{head}.{i}."
            sd[p + "upsample.kernel"] = _blur(4.0)
            sd[p + "conv.weight"] = r(n_out, out, 1, 1)
            sd[p + "conv.modulation"] = 1 + 0.1 * r(1, out, 1, 1)
            sd[p + "bias"] = 0.1 * r(1, n_out, 1, 1)
        in_ch = out
    return sd


def official_discriminator_sd(size: int = 32, seg_dim: int = 13) -> dict[str, torch.Tensor]:
    """Random tensors under the official DualBranchDiscriminator names and shapes."""
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g)            # noqa: E731
    sd = {}
    for branch, in_dim in (("convs_img", 3), ("convs_seg", seg_dim)):
        c = WIDTH[size]
        sd[f"{branch}.0.0.weight"], sd[f"{branch}.0.1.bias"] = r(c, in_dim, 1, 1), r(c)
        for b, lg in enumerate(range(int(math.log2(size)), 2, -1), start=1):
            out, p = WIDTH[2 ** (lg - 1)], f"{branch}.{b}."
            sd[p + "conv1.0.weight"], sd[p + "conv1.1.bias"] = r(c, c, 3, 3), r(c)
            sd[p + "conv2.0.kernel"], sd[p + "conv2.1.weight"] = _blur(1.0), r(out, c, 3, 3)
            sd[p + "conv2.2.bias"] = r(out)
            sd[p + "skip.0.kernel"], sd[p + "skip.1.weight"] = _blur(1.0), r(out, c, 1, 1)
            c = out
    sd["final_conv.0.weight"], sd["final_conv.1.bias"] = r(512, 513, 3, 3), r(512)
    sd["final_linear.0.weight"], sd["final_linear.0.bias"] = r(512, 512 * 16), r(512)
    sd["final_linear.1.weight"], sd["final_linear.1.bias"] = r(1, 512), r(1)
    return sd


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    args = official_args()
    g_sd = official_generator_sd(args)
    path = tmp_path_factory.mktemp("ckpt") / "000000.pt"
    torch.save({"g": official_generator_sd(args, seed=5), "d": official_discriminator_sd(),
                "g_ema": g_sd, "g_optim": {}, "d_optim": {}, "args": args}, path)
    return path, args, g_sd


def test_checkpoint_converts_and_loads_strictly(checkpoint):
    path, args, official = checkpoint
    cfg, sd = load_official_checkpoint(path)               # weights_only + allow-listed Namespace
    assert (cfg.size, cfg.grid, cfg.min_feat_size, cfg.style_dim, cfg.n_mlp) == (32, 8, 4, 24, 3)
    assert (cfg.local_channels, cfg.local_layers, cfg.feature_channels) == (8, 5, 16)
    assert cfg.render_channels == (512, 512, 512) and cfg.transparent_classes == (10, 12)
    g = SemanticGenerator(cfg)
    g.load_state_dict(sd, strict=True)
    assert set(sd) == set(g.state_dict())
    layer_4_class_7 = official["local_nets.7.linears.4.conv.weight"][0, :, :, 0, 0]
    assert torch.equal(g.local.weight[4, 7], layer_4_class_7)
    assert torch.equal(g.local.depth_bias[2], official["local_nets.3.to_depth.bias"].reshape(()))
    assert torch.equal(g.style.layers[0].weight, official["style.1.weight"])
    assert torch.equal(g.render.noise_5, official["render_net.noises.noise_5"])
    assert torch.equal(g.render.convs[2].weight, official["render_net.convs.2.weight"])
    _, sd_g = load_official_checkpoint(path, key="g")
    assert not torch.equal(sd_g["style.layers.0.weight"], sd["style.layers.0.weight"])


def _reference_local(official: dict, a: argparse.Namespace, wplus: torch.Tensor):
    """Per-class loop over the official tensors: depths (N, K, G, G), fused feature (N, F, G, G)."""
    N, D, C, K, G = wplus.shape[0], a.latent, a.local_channel, a.seg_dim, a.coarse_size
    lin = torch.linspace(-1, 1, G)
    coords = torch.stack([lin.view(1, -1).expand(G, G), lin.view(-1, 1).expand(G, G)])
    feats = [coords] + [f(2.0 ** i * coords) for i in range(int(math.log2(a.size)))
                        for f in (torch.sin, torch.cos)]
    pos = official["pos_embed.weights"][:, :, 0, 0]
    emb = (pos / math.sqrt(pos.shape[1])) @ torch.cat(feats).reshape(-1, G * G)   # (C, P)
    depths, parts = [], []
    for k in range(K):
        base = [] if k == 0 else [wplus[:, i] for i in range(a.base_layers)]
        n_shape = a.depth_layers - len(base)
        codes = base + [wplus[:, a.base_layers + 2 * k]] * n_shape
        codes += [wplus[:, a.base_layers + 2 * k + 1]] * (a.local_layers - a.depth_layers)
        x, depth = emb.expand(N, C, G * G), torch.zeros(N, G * G)
        for j, code in enumerate(codes):
            p = f"local_nets.{k}.linears.{j}."
            s = code @ official[p + "conv.modulation.weight"].T / math.sqrt(D)
            s = s + official[p + "conv.modulation.bias"]                           # (N, C)
            w = official[p + "conv.weight"][0, :, :, 0, 0] / math.sqrt(C) * s[:, None, :]
            w = w * torch.rsqrt(w.square().sum(2, keepdim=True) + 1e-8)            # (N, O, I)
            x = F.leaky_relu(torch.bmm(w, x) + official[p + "activate.bias"][:, None], 0.2)
            x = x * math.sqrt(2)
            if k > 0 and j == a.depth_layers - 1:
                q = f"local_nets.{k}.to_depth."
                wd = official[q + "conv.weight"][:, :, 0, 0]
                wd = wd * official[q + "conv.modulation"][0, :, 0, 0]
                depth = (wd / math.sqrt(C) @ x)[:, 0] + official[q + "bias"].reshape(())
        q = f"local_nets.{k}.to_feat."
        wf = official[q + "conv.weight"][:, :, 0, 0] * official[q + "conv.modulation"][0, :, 0, 0]
        parts.append(wf / math.sqrt(C) @ x + official[q + "bias"].reshape(-1, 1))  # (N, F, P)
        depths.append(depth)
    mask = torch.softmax(torch.stack(depths, 1), dim=1)                            # (N, K, P)
    opaque = torch.tensor([0.0 if i in a.transparent_dims else 1.0 for i in range(K)])
    normal = mask * opaque[:, None]
    weight = normal / (normal.sum(1, keepdim=True) + 1e-8) + mask * (1 - opaque[:, None])
    fused = sum(parts[i] * weight[:, i:i + 1] for i in range(K))
    return torch.stack(depths, 1).reshape(N, K, G, G), fused.reshape(N, -1, G, G)


@pytest.mark.slow
def test_converted_local_generators_match_a_per_class_reference(checkpoint):
    path, args, official = checkpoint
    cfg, sd = load_official_checkpoint(path)
    g = SemanticGenerator(cfg)
    g.load_state_dict(sd)
    torch.manual_seed(0)
    wplus = torch.randn(2, cfg.n_latent, cfg.style_dim)
    with torch.no_grad():
        out = g(wplus, input_is_latent=True, noise="const", return_all=True)
    ref_depth, ref_feat = _reference_local(official, args, wplus)
    torch.testing.assert_close(out.depths, ref_depth, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.feature, ref_feat, rtol=1e-4, atol=1e-4)
    assert torch.isfinite(out.image).all() and out.image.shape == (2, 3, 32, 32)


def test_missing_unexpected_and_misshapen_keys_are_named():
    args = official_args()
    sd = official_generator_sd(args)
    convert_official_state_dict(sd, args)
    broken = dict(sd)
    del broken["local_nets.4.linears.2.activate.bias"]
    broken["render_net.extra.weight"] = torch.zeros(1)
    broken["render_net.to_segs.1.bias"] = torch.zeros(1, 12, 1, 1)
    with pytest.raises(OfficialCheckpointError) as err:
        convert_official_state_dict(broken, args)
    msg = str(err.value)
    assert "local_nets.4.linears.2.activate.bias" in msg and "render_net.extra.weight" in msg
    assert "render_net.to_segs.1.bias: (1, 12, 1, 1)" in msg
    bad_kernel = dict(sd, **{"render_net.convs.0.blur.kernel": torch.ones(4, 4)})
    with pytest.raises(OfficialCheckpointError, match="blur kernel"):
        convert_official_state_dict(bad_kernel, args)
    with pytest.raises(OfficialCheckpointError, match="latent=32"):
        convert_official_state_dict(sd, official_args(latent=32))
    with pytest.raises(OfficialCheckpointError, match="lack 'coarse_size'"):
        convert_official_state_dict(sd, {k: v for k, v in vars(args).items() if k != "coarse_size"})


def test_untrusted_pickles_are_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": {}, "args": datetime.date(2022, 1, 1)}, path)
    with pytest.raises(OfficialCheckpointError, match="trusted=True"):
        load_official_checkpoint(path)
    with pytest.raises(OfficialCheckpointError, match="no 'd'"):
        load_official_checkpoint({"g_ema": {}, "args": official_args()}, key="d")


@pytest.mark.parametrize("seg", [True, False])
def test_discriminator_converts_in_both_modes(seg):
    official = official_discriminator_sd()
    cfg, sd = convert_official_discriminator(official, seg=seg)
    assert cfg.size == 32 and cfg.seg is seg and cfg.channels == (512, 512, 512, 512)
    d = Discriminator(cfg)
    d.load_state_dict(sd, strict=True)
    assert torch.equal(d.image_branch[2].conv2.conv.weight, official["convs_img.2.conv2.1.weight"])
    args = (torch.randn(2, 3, 32, 32),) + ((torch.randn(2, 13, 32, 32),) if seg else ())
    assert torch.isfinite(d(*args)).all()
    broken = dict(official)
    del broken["convs_img.1.skip.1.weight"]
    with pytest.raises(OfficialCheckpointError, match="image_branch.1.skip.conv.weight"):
        convert_official_discriminator(broken, seg=seg)
