"""GAN inversion (Eq. 4-5), w~_mean for see-through assets, and x = G_real(w) (Eq. 6), on tiny
generators. Targets are renders of the generator itself at random W+ codes, so an exact
solution exists."""
from __future__ import annotations

import math

import pytest
import torch

from swiftavatar.production.inversion import invert, lr_at
from swiftavatar.production.inversion_config import InversionConfig
from swiftavatar.production.mean_latent import (choose_init, class_fractions, coarse_masks,
                                                modified_mean_latent)
from swiftavatar.production.realistic import generate_real
from swiftavatar.metrics import build_lpips
from swiftavatar.models import GeneratorConfig, SemanticGenerator
from swiftavatar.semantics import EYEGLASSES, HAIR, SKIN

TINY = GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=32, local_channels=16,
                       local_layers=5, base_layers=2, depth_layers=3, feature_channels=16,
                       render_channels=(32, 16, 16))


def make_g(seed: int = 0) -> SemanticGenerator:
    torch.manual_seed(seed)
    return SemanticGenerator(TINY)


def render_targets(g: SemanticGenerator, n: int, seed: int) -> torch.Tensor:
    """(n, 3, 32, 32) renders at W+ codes whose rows are independent mapped samples."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n * g.n_latent, TINY.style_dim, generator=gen)
        wplus = g.mapping(z).reshape(n, g.n_latent, TINY.style_dim)
        image, _ = g(wplus, input_is_latent=True, noise="const")
    return image.clamp(-1, 1)


@pytest.fixture(scope="module")
def lpips(tmp_path_factory):
    """The offline LPIPS (the HED stand-in where installed; cache in a temp dir)."""
    return build_lpips("vgg", hub_dir=tmp_path_factory.mktemp("hub"),
                       cache_dir=tmp_path_factory.mktemp("cache"), allow_random=True)


@pytest.mark.slow
def test_inversion_lowers_the_loss_and_beats_the_mean_code(lpips):
    g = make_g(0)
    y = render_targets(g, 2, seed=10)
    res = invert(g, y, steps=30, lpips=lpips)
    assert res.latents.shape == (2, g.n_latent, TINY.style_dim)
    assert res.reconstructions.shape == y.shape
    assert res.reconstructions.abs().max() <= 1.0
    assert res.history.shape == (30, 2)
    assert torch.all(res.history[-1] < 0.4 * res.history[0]), res.history[[0, -1]]
    assert set(res.losses) == {"total", "lpips", "mse", "latent"}
    assert all(v.shape == (2,) for v in res.losses.values())
    cfg = InversionConfig()
    torch.testing.assert_close(res.losses["total"], cfg.lambda_p * res.losses["lpips"]
                               + cfg.lambda_i * res.losses["mse"]
                               + cfg.lambda_l * res.losses["latent"])
    with torch.no_grad():
        w_mean = g.mean_latent(10_000, generator=torch.Generator().manual_seed(0))
        start, _ = g(w_mean, input_is_latent=True, noise="const")
    mse_start = (start - y).square().flatten(1).mean(1)
    assert torch.all(res.losses["mse"] < 0.7 * mse_start), (res.losses["mse"], mse_start)
    assert torch.all(res.losses["latent"] > 0)                 # it moved away from w_mean


def test_batched_inversion_matches_one_by_one(lpips):
    """Same path per image up to float noise. Adam divides by sqrt(v), so coordinates whose
    gradient is nearly 0 turn that noise into steps of up to lr: bound the max, not only the
    mean, well below the distance travelled."""
    g = make_g(1)
    y = render_targets(g, 3, seed=11)
    batch = invert(g, y, steps=6, lpips=lpips, n_mean=2000)
    w0 = g.mean_latent(2000, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        alone = invert(g, y[i:i + 1], steps=6, lpips=lpips, n_mean=2000)
        diff = (alone.latents[0] - batch.latents[i]).abs()
        travelled = (batch.latents[i] - w0).abs().mean()
        assert diff.max() < 1e-2 and diff.mean() < 1e-2 * travelled, (diff.max(), travelled)
        for k in batch.losses:
            torch.testing.assert_close(alone.losses[k][0], batch.losses[k][i],
                                       atol=1e-4, rtol=1e-2)


def test_inversion_leaves_the_generator_as_it_was():
    g = make_g(2)
    g.train()
    next(g.render.parameters()).requires_grad_(False)          # mixed flags come back as set
    flags = [p.requires_grad for p in g.parameters()]
    before = {k: v.clone() for k, v in g.state_dict().items()}
    invert(g, render_targets(g, 2, seed=12), steps=5, n_mean=500)
    assert g.training
    assert [p.requires_grad for p in g.parameters()] == flags
    assert all(p.grad is None for p in g.parameters())
    for k, v in g.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_latent_term_alone_pulls_towards_the_anchor():
    g = make_g(3)
    y = render_targets(g, 2, seed=13)
    w0 = g.mean_latent(500, generator=torch.Generator().manual_seed(1))
    still = invert(g, y, steps=5, w_init=w0, lambda_p=0.0, lambda_i=0.0)
    torch.testing.assert_close(still.latents, g.to_wplus(w0).expand(2, -1, -1))  # no force
    anchor = w0 + 1.0
    pulled = invert(g, y, steps=30, w_init=w0, w_anchor=anchor, lambda_p=0.0, lambda_i=0.0,
                    rampup=0.0)
    dist = (pulled.latents - anchor[:, None]).square().flatten(1).mean(1)
    assert torch.all(dist < 0.5)                               # started at 1.0
    torch.testing.assert_close(pulled.losses["latent"], dist)


def test_targets_are_checked_and_resized():
    g = make_g(4)
    y64 = torch.nn.functional.interpolate(render_targets(g, 2, seed=14), size=64,
                                          mode="bilinear")
    res = invert(g, y64, steps=2, n_mean=100)
    assert res.reconstructions.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        invert(g, (y64 + 1) * 127.5, steps=1, n_mean=100)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        invert(g, y64[:, 0], steps=1, n_mean=100)
    with pytest.raises(ValueError, match="latent must be"):
        invert(g, y64, steps=1, w_init=torch.zeros(3, TINY.style_dim))
    with pytest.raises(TypeError):
        invert(g, y64, steps=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="move G first"):
        invert(g, y64, steps=1, device="meta")


def test_learning_rate_schedule():
    lrs = [lr_at(i, 200, 0.1) for i in range(200)]
    assert all(0 < v <= 0.1 for v in lrs)
    assert lrs[0] < lrs[5] < lrs[9]                            # warm-up: first 5% = 10 steps
    assert all(v == pytest.approx(0.1) for v in lrs[10:150])   # plateau
    assert all(a > b for a, b in zip(lrs[150:], lrs[151:]))    # cosine decay, last 25%
    assert lrs[-1] < 0.001
    for i in (0, 50, 199):                                     # plain cosine annealing
        t = (i + 0.5) / 200
        assert lr_at(i, 200, 0.1, rampup=0.0, rampdown=1.0) == pytest.approx(
            0.1 * 0.5 * (1 + math.cos(math.pi * t)))


def test_coarse_masks_are_the_generators():
    g = make_g(5)
    w = g.mapping(torch.randn(3, TINY.style_dim)).detach()
    with torch.no_grad():
        torch.testing.assert_close(coarse_masks(g, w),
                                   g(w, input_is_latent=True, return_all=True).mask_coarse)


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_modified_mean_avoids_eyeglasses(seed):
    """In these untrained generators eyeglasses cover some coarse-mask pixels in most samples
    (checked below). Codes spread around w~_mean must show markedly fewer glasses than codes
    spread the same way around w_mean."""
    g = make_g(seed)
    mm = modified_mean_latent(g, n=2000, seed=seed)
    assert (mm.fractions > 0).float().mean() > 0.5
    assert mm.kept.sum() >= 100 and torch.all(mm.fractions[mm.kept] <= mm.threshold)
    assert mm.fractions[mm.kept].mean() < 0.5 * mm.fractions.mean()
    w_mean = g.mean_latent(10_000, generator=torch.Generator().manual_seed(0))
    assert (mm.w - w_mean).norm() > 0.1 * w_mean.norm()
    with torch.no_grad():
        spread = g.mapping(torch.randn(1000, TINY.style_dim,
                                       generator=torch.Generator().manual_seed(99))) - w_mean
    near_tilde = class_fractions(g, mm.w + 0.5 * spread).mean()
    near_mean = class_fractions(g, w_mean + 0.5 * spread).mean()
    assert near_tilde < 0.7 * near_mean, (near_tilde, near_mean)


def test_modified_mean_falls_back_to_the_cleanest_samples():
    g = make_g(0)
    with torch.no_grad():
        g.local.depth_bias[EYEGLASSES - 1] += 2.0               # glasses nearly everywhere
    mm = modified_mean_latent(g, n=1000, min_kept=0.1, batch_size=300)
    assert mm.rule == "quantile" and int(mm.kept.sum()) == 100
    assert mm.fractions[mm.kept].max() <= mm.fractions[~mm.kept].min()
    torch.testing.assert_close(mm.threshold, float(mm.fractions[mm.kept].max()))
    clean = modified_mean_latent(make_g(1), n=1000)
    assert clean.rule == "max_fraction" and torch.all(clean.fractions[clean.kept] <= 0.002)
    with pytest.raises(ValueError, match="exclude_classes"):
        modified_mean_latent(g, n=10, exclude_classes=(13,))


def test_choose_init_policies():
    g = make_g(0)
    w_mean, w_tilde = torch.zeros(1, TINY.style_dim), torch.ones(1, TINY.style_dim)
    init, used = choose_init(g, 3, w_mean, w_tilde)
    assert init.shape == (3, g.n_latent, TINY.style_dim) and used.all()
    assert torch.all(init == 1)
    masks = torch.full((3, 16, 16), SKIN)
    masks[1, 5:7, 2:14] = EYEGLASSES                            # only avatar 1 wears glasses
    masks[2, 0, 0] = HAIR
    init, used = choose_init(g, 3, w_mean, w_tilde, masks, policy="masks")
    assert used.tolist() == [True, False, True]
    assert torch.all(init[1] == 0) and torch.all(init[0] == 1)
    with pytest.raises(ValueError, match="engine masks"):
        choose_init(g, 3, w_mean, w_tilde, policy="masks")
    with pytest.raises(ValueError, match="policy"):
        choose_init(g, 3, w_mean, w_tilde, policy="sometimes")


def test_generate_real_is_the_real_generator_on_the_codes():
    g_avatar, g_real = make_g(0), make_g(7)
    res = invert(g_avatar, render_targets(g_avatar, 3, seed=15), steps=3, n_mean=200)
    x = generate_real(g_real, res.latents, batch_size=2)      # Eq. 6
    with torch.no_grad():
        ref, _ = g_real(res.latents, input_is_latent=True, noise="const")
    assert x.shape == (3, 3, 32, 32)
    torch.testing.assert_close(x, ref.clamp(-1, 1))
    with pytest.raises(ValueError, match="W\\+"):
        generate_real(g_real, res.latents[:, 0])


def _masks_of(g: SemanticGenerator, targets_seed: int, n: int) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
    """(renders, their class-id masks) of g at random W+ codes."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(targets_seed)
        z = torch.randn(n * g.n_latent, TINY.style_dim, generator=gen)
        wplus = g.mapping(z).reshape(n, g.n_latent, TINY.style_dim)
        image, seg = g(wplus, input_is_latent=True, noise="const")
    return image.clamp(-1, 1), seg.argmax(1)


def test_segmentation_term_pulls_the_layout_to_the_engine_mask():
    g = make_g(0)
    targets, masks = _masks_of(g, 21, 3)
    kw = dict(steps=25, n_mean=200, lambda_p=0.0, lambda_i=0.0, lambda_l=0.0)
    plain = invert(g, targets, **kw)
    seg = invert(g, targets, masks=masks, lambda_s=1.0, **kw)
    agree = lambda r: float((r.masks.long() == masks).float().mean())  # noqa: E731
    assert seg.masks.shape == (3, 32, 32) and seg.masks.dtype == torch.uint8
    assert "seg" in seg.losses and "seg" not in plain.losses
    assert agree(seg) > agree(plain) + 0.05
    assert seg.losses["seg"].mean() < seg.history[0].mean()            # it went down
    with pytest.raises(ValueError, match="needs the targets' masks"):
        invert(g, targets, steps=1, n_mean=50, lambda_s=1.0)
    with pytest.raises(ValueError, match="class ids must lie"):
        invert(g, targets, steps=1, n_mean=50, lambda_s=1.0, masks=masks + 20)


def test_colour_term_moves_only_texture_codes_towards_the_renders_colours():
    from swiftavatar.production.inversion_terms import hard_region_colors, texture_rows

    g_avatar, g_real = make_g(0), make_g(7)
    targets, masks = _masks_of(g_avatar, 22, 3)
    with torch.no_grad():
        w0 = g_avatar.mean_latent(200, generator=torch.Generator().manual_seed(0))  # (1, D)
    kw = dict(steps=20, lambda_p=0.0, lambda_i=0.0, lambda_l=0.0, colour_classes=(SKIN, HAIR))
    res = invert(g_avatar, targets, masks=masks, g_real=g_real, lambda_c=1.0, w_init=w0, **kw)
    assert "colour" in res.losses
    start = w0[:, None].expand_as(res.latents)
    moved = (res.latents - start).abs().sum((0, 2)) > 0                  # (R,)
    assert torch.equal(moved, texture_rows(g_avatar))                    # texture rows only
    with torch.no_grad():
        def colour_error(w):
            x, seg = g_real(w, input_is_latent=True, noise="const")
            a, _ = hard_region_colors(x, seg.argmax(1), (SKIN, HAIR))
            b, area = hard_region_colors(targets, masks, (SKIN, HAIR))
            return float(((a - b).square().sum(-1) * (area > 1e-3)).sum())
        assert colour_error(res.latents) < colour_error(start)
    with pytest.raises(ValueError, match="needs g_real"):
        invert(g_avatar, targets, steps=1, n_mean=50, lambda_c=1.0)
