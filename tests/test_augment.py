"""Semantic augmentation (Eq. 7) on tiny generators: which codes change, how much, where in the
image, and reproducibility."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from swiftavatar.production.augment import AugmentConfig, augment, code_rows
from swiftavatar.models import GeneratorConfig, SemanticGenerator
from swiftavatar.semantics import BACKGROUND, CLASSES, EYEGLASSES, HAIR, NUM_CLASSES

TINY = GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=32, local_channels=16,
                       local_layers=5, base_layers=2, depth_layers=3, feature_channels=16,
                       render_channels=(32, 16, 16))


def make_g(seed: int = 0, depth_gain: float = 1.0) -> SemanticGenerator:
    """A tiny generator; depth_gain > 1 sharpens the part masks. An untrained generator's
    masks are nearly flat (max softmax about 0.2), so every part leaks everywhere; x8 gives
    decisive masks (max about 0.8) like a trained model's."""
    torch.manual_seed(seed)
    g = SemanticGenerator(TINY)
    with torch.no_grad():
        g.local.depth_weight.mul_(depth_gain)
    return g


def codes(g: SemanticGenerator, n: int, seed: int) -> torch.Tensor:
    """(n, n_latent, D) W+ codes with independent rows."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n * g.n_latent, TINY.style_dim, generator=gen)
        return g.mapping(z).reshape(n, g.n_latent, TINY.style_dim)


def changed_rows(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    """W+ rows (dim 1) that differ anywhere."""
    return set(torch.nonzero((before != after).any(-1).any(0)).flatten().tolist())


def test_only_the_chosen_parts_codes_change():
    g = make_g()
    w = codes(g, 3, seed=1)
    res = augment(g, w, AugmentConfig(num_augmentations=4), seed=0)     # paper's lambdas
    assert res.latents.shape == (12, g.n_latent, TINY.style_dim)
    assert res.source.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert res.aug_index.tolist() == [0, 1, 2, 3] * 3
    base = w[res.source]
    expected = {r for k in (BACKGROUND, HAIR, EYEGLASSES) for r in g.class_code_indices(k)}
    assert changed_rows(base, res.latents) == expected
    for i in range(12):                      # every augmentation perturbs every chosen row
        assert all(not torch.equal(res.latents[i, r], base[i, r]) for r in expected)
    assert not torch.equal(res.latents[0], res.latents[1])              # augmentations differ
    texture = augment(g, w, AugmentConfig(num_augmentations=2, codes="texture"), seed=0)
    assert changed_rows(w[texture.source], texture.latents) == {
        g.texture_index(k) for k in (BACKGROUND, HAIR, EYEGLASSES)}
    assert code_rows(g, HAIR, "shape") == [g.shape_index(HAIR)]


def test_lambda_zero_keeps_and_lambda_one_replaces_the_codes():
    g = make_g()
    w = codes(g, 2, seed=2)
    zero = augment(g, w, AugmentConfig(num_augmentations=3, lambdas={"hair": 0.0}), seed=5)
    assert torch.equal(zero.latents, w[zero.source])
    one = AugmentConfig(num_augmentations=3, lambdas={"hair": 1.0, "skin": 1.0})
    a = augment(g, w, one, seed=5)
    b = augment(g, codes(g, 2, seed=3), one, seed=5)          # other inputs, same noise
    s, t = g.class_code_indices(HAIR)
    assert torch.equal(a.latents[:, [s, t]], b.latents[:, [s, t]])     # input fully replaced
    assert torch.equal(a.latents[:, s], a.latents[:, t])               # one n per part
    assert not torch.equal(a.latents[:, s], a.latents[:, g.shape_index(1)])  # n per part
    half = augment(g, w, AugmentConfig(num_augmentations=3,
                                       lambdas={"hair": 0.5, "skin": 0.5}), seed=5)
    torch.testing.assert_close(half.latents[:, [s, t]],                # Eq. 7 at lambda 0.5
                               0.5 * w[half.source][:, [s, t]] + 0.5 * a.latents[:, [s, t]])


def test_noise_codes_come_from_the_mapping_network():
    """With lambda 1 the new code is n = mapping(z), z ~ N(0, I): averaged over many draws it
    lands near G's w_mean (the mean of W), whereas raw z would average near 0."""
    g = make_g()
    res = augment(g, codes(g, 50, seed=4), AugmentConfig(num_augmentations=10,
                                                          lambdas={"hair": 1.0}), seed=1)
    new = res.latents[:, g.shape_index(HAIR)]                              # (500, D)
    w_mean = g.mean_latent(10_000, generator=torch.Generator().manual_seed(0))[0]
    assert (new.mean(0) - w_mean).norm() < 0.2 * w_mean.norm()


def test_reproducible_by_seed():
    g = make_g()
    w = codes(g, 2, seed=6)
    cfg = AugmentConfig(num_augmentations=3)
    assert torch.equal(augment(g, w, cfg, seed=9).latents, augment(g, w, cfg, seed=9).latents)
    assert not torch.equal(augment(g, w, cfg, seed=9).latents,
                           augment(g, w, cfg, seed=10).latents)


def _region_share(change: torch.Tensor, region: torch.Tensor) -> float:
    """Fraction of the summed change (N, H, W) inside a 0/1 region (N, H, W)."""
    return float((change * region).sum() / change.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmentation_changes_mostly_the_augmented_part(seed):
    """Augment the part with the largest area at lambda 1. The fused feature is computed per
    pixel, so its change must sit inside the union of the part's argmax region before and
    after (as in tests/test_models.py's editing test); in the image, the region's share of the
    change must exceed its share of the pixels."""
    g = make_g(seed, depth_gain=8.0)
    w = codes(g, 4, seed=20 + seed)
    with torch.no_grad():
        before = g(w, input_is_latent=True, noise="const", return_all=True)
        areas = F.one_hot(before.mask_coarse.argmax(1), NUM_CLASSES).float().mean((0, 1, 2))
        k = int(areas[1:].argmax()) + 1
        res = augment(g, w, AugmentConfig(num_augmentations=2, lambdas={CLASSES[k]: 1.0}),
                      seed=seed)
        after = g(res.latents, input_is_latent=True, noise="const", return_all=True)
    prev = before.mask_coarse[res.source]
    prev_feat, prev_img = before.feature[res.source], before.image[res.source]
    union = ((prev.argmax(1) == k) | (after.mask_coarse.argmax(1) == k)).float()  # (8, G, G)
    assert _region_share((after.feature - prev_feat).abs().sum(1), union) > 0.7
    union_px = F.interpolate(union[:, None], size=TINY.size, mode="nearest")[:, 0]
    img_change = (after.image - prev_img).abs().sum(1)                             # (8, H, W)
    assert _region_share(img_change, union_px) > float(union_px.mean()) + 0.03


def test_config_and_input_validation():
    with pytest.raises(ValueError, match="unknown part 'beard'"):
        AugmentConfig(lambdas={"beard": 0.3})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        AugmentConfig(lambdas={"hair": 1.5})
    with pytest.raises(ValueError, match="codes"):
        AugmentConfig(codes="all")
    with pytest.raises(ValueError, match="num_augmentations"):
        AugmentConfig(num_augmentations=0)
    assert AugmentConfig().lambdas == {"background": 1.0, "hair": 0.3, "eyeglasses": 0.06}
    g = make_g()
    with pytest.raises(ValueError, match="W\\+"):
        augment(g, codes(g, 2, seed=0)[:, 0])
    torch.manual_seed(0)
    small = SemanticGenerator(GeneratorConfig(
        size=32, grid=8, min_feat_size=4, style_dim=32, local_channels=16, local_layers=5,
        depth_layers=3, feature_channels=16, render_channels=(32, 16, 16), num_classes=4,
        transparent_classes=()))
    w_small = torch.zeros(1, small.n_latent, 32)
    with pytest.raises(ValueError, match="only 4 classes"):
        augment(small, w_small)                                   # hair is class 7
    assert augment(small, w_small, AugmentConfig(lambdas={"skin": 1.0})).latents.shape == (
        10, small.n_latent, 32)
