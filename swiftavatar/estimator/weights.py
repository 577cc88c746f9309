"""ImageNet trunk weights for the estimator, found offline and recorded honestly.

`EstimatorConfig.pretrained` selects them:
* a file path: a torchvision ResNet state-dict file (its `fc.*` entries are ignored); it must
  exist and fit the trunk, else an error says so;
* "auto": torchvision's own release file in the torch hub cache
  (`torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth` for ResNet-18) when it is there,
  else a randomly initialised trunk (training from scratch);
* None (or "none"): a randomly initialised trunk.
Nothing is ever downloaded. The result is recorded in `model.backbone_info`: kind
("torchvision-imagenet" when the file's sha256 starts with the hash in torchvision's file name,
"unverified-file" for another file, "random"), path and sha256.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from swiftavatar.estimator.model import AvatarEstimator, EstimatorConfig

# torchvision's ImageNet release per trunk; the part after the last '-' is its sha256 prefix.
TORCHVISION_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
                     "resnet50": "resnet50-0676ba61.pth"}
AUTO = "auto"
_FROM_CONFIG = object()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def find_backbone_file(backbone: str, pretrained: str | None,
                       hub_dir: str | Path | None = None) -> Path | None:
    """The weights file `pretrained` names for `backbone`, or None for a random trunk."""
    if pretrained is None or str(pretrained).lower() == "none":
        return None
    if pretrained == AUTO:
        hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
        cached = hub / "checkpoints" / TORCHVISION_FILES[backbone]
        return cached if cached.is_file() else None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"estimator backbone weights {path} do not exist: give a "
                                f"torchvision {backbone} state-dict file (e.g. "
                                f"{TORCHVISION_FILES[backbone]}), 'auto' or none")
    return path


def load_backbone(model: AvatarEstimator, pretrained: Any = _FROM_CONFIG,
                  hub_dir: str | Path | None = None) -> dict[str, Any]:
    """Load trunk weights into `model` (see the module docstring); `pretrained` defaults to
    model.config.pretrained. Sets and returns model.backbone_info."""
    backbone = model.config.backbone
    want = model.config.pretrained if pretrained is _FROM_CONFIG else pretrained
    path = find_backbone_file(backbone, want, hub_dir)
    if path is None:
        note = ("no trunk weights asked for" if want is None or str(want).lower() == "none"
                else f"{TORCHVISION_FILES[backbone]} is not in the torch hub cache")
        info = {"kind": "random", "path": None, "sha256": None, "note": note}
        model.backbone_info = info
        return info
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise ValueError(f"{path}: not a loadable torch state-dict file ({err})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.removeprefix("module.").startswith("fc.")}
    trunk_keys = set(model.trunk.state_dict())
    missing = sorted(trunk_keys - set(state))
    unexpected = sorted(set(state) - trunk_keys)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit a torchvision {backbone} trunk: missing "
                         f"{missing[:4]}, unexpected {unexpected[:4]} (wrong network?)")
    for k, v in model.trunk.state_dict().items():
        if state[k].shape != v.shape:
            raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, the {backbone} "
                             f"trunk needs {tuple(v.shape)}")
    model.trunk.load_state_dict(state)
    digest = _sha256(path)
    expected = TORCHVISION_FILES[backbone].rsplit("-", 1)[1].split(".")[0]
    kind = "torchvision-imagenet" if digest.startswith(expected) else "unverified-file"
    info = {"kind": kind, "path": str(path), "sha256": digest}
    model.backbone_info = info
    return info


def build_estimator(config: EstimatorConfig, schema, *,
                    hub_dir: str | Path | None = None) -> AvatarEstimator:
    """A new estimator for `schema` with its trunk weights loaded per config.pretrained (the
    heads start random; seed torch first for repeatable heads)."""
    model = AvatarEstimator.for_schema(config, schema)
    load_backbone(model, hub_dir=hub_dir)
    return model


__all__ = ["TORCHVISION_FILES", "build_estimator", "find_backbone_file", "load_backbone"]
