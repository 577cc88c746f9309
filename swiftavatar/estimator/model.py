"""The avatar estimator (paper section 3.3): a ResNet trunk without its last fully connected
layer, one MLP head for all continuous parameters and one MLP head per discrete parameter
(separate weights, evaluated together by `Heads`).

Input convention (training and prediction alike): images (N, 3, S, S) float in [-1, 1], the
project's image range; the model standardises them with ImageNet's mean and std itself, so an
ImageNet-pretrained trunk sees the input it was trained on. `prepare_images` turns (N, H, W, 3)
uint8 into that input at the model's `input_size`. Outputs: `cont` (N, n_c) sigmoid values in
the normalised [0, 1] space of `VectorBatch.normalized_continuous`, `logits` one (N, K_j) tensor
per discrete parameter. `decode` turns outputs into a VectorBatch that always validates.

Pure torch.nn: no file I/O here (trunk weights are loaded by `swiftavatar.estimator.weights`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swiftavatar.estimator.photometric import COLOR_NORMS, normalize_colour

# Trunks this model accepts: name -> width of the pooled feature. The ResNets are torchvision's
# constructors; efficientnet_lite0 is `efficientnet_lite.EfficientNetLite0`.
BACKBONES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "efficientnet_lite0": 1280}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The input scaling each trunk's ImageNet weights were trained with: (mean, std) on [0, 1].
# EfficientNet-Lite uses TensorFlow Lite's (x - 127) / 128.
NORMALIZATION = {"resnet18": (IMAGENET_MEAN, IMAGENET_STD),
                 "resnet34": (IMAGENET_MEAN, IMAGENET_STD),
                 "resnet50": (IMAGENET_MEAN, IMAGENET_STD),
                 "efficientnet_lite0": ((127 / 255,) * 3, (128 / 255,) * 3)}


@dataclass(frozen=True)
class EstimatorConfig:
    """Architecture of the estimator. Paper: ResNet-18 pretrained on ImageNet, 224-px input.
    The embedded preset uses the paired data's own resolution (`embedded()`: 64 px)."""

    input_size: int = 224            # images are resized to input_size x input_size
    backbone: str = "resnet18"       # one of BACKBONES
    head_hidden: int = 256           # hidden width of every MLP head (0: a linear head)
    pretrained: str | None = "auto"  # trunk weights: a file path, "auto" (torchvision's file in
                                     # the torch hub cache if present, else random), or None
    # colour normalisation of the input crop in training and prediction alike (not in the
    # paper): "none" or "grayworld" (photometric.normalize_colour)
    color_norm: str = "none"

    @classmethod
    def embedded(cls, input_size: int = 64) -> "EstimatorConfig":
        return cls(input_size=input_size)

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.backbone not in BACKBONES:
            out.append(("backbone", f"must be one of {sorted(BACKBONES)}, got {self.backbone!r}"))
        if not 32 <= self.input_size <= 1024:
            out.append(("input_size", f"must be in 32..1024, got {self.input_size}"))
        if self.head_hidden < 0:
            out.append(("head_hidden", f"must be >= 0, got {self.head_hidden}"))
        if self.color_norm not in COLOR_NORMS:
            out.append(("color_norm", f"must be one of {list(COLOR_NORMS)}, "
                                      f"got {self.color_norm!r}"))
        return out

    def validate(self) -> "EstimatorConfig":
        bad = self.problems()
        if bad:
            raise ValueError("; ".join(f"{k} {m}" for k, m in bad))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `color_norm` only when on (configs and checkpoints written before it
        existed read, and compare, as before)."""
        d = dataclasses.asdict(self)
        if d["color_norm"] == "none":
            del d["color_norm"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EstimatorConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown EstimatorConfig fields {unknown}")
        return cls(**d)


def make_trunk(backbone: str) -> nn.Module:
    """A randomly initialised trunk without its classifier: (N, 3, H, W) -> (N, width)."""
    if backbone == "efficientnet_lite0":
        from swiftavatar.estimator.efficientnet_lite import EfficientNetLite0

        return EfficientNetLite0(num_classes=None)
    import torchvision

    trunk = getattr(torchvision.models, backbone)(weights=None)
    trunk.fc = nn.Identity()
    return trunk


class Heads(nn.Module):
    """Separate MLP heads, computed together: head j has its own `hidden` units (one slice of a
    single wide first layer, so one matmul serves all heads) and its own output layer. With
    hidden == 0 every head is linear (one matmul, split). forward: (N, F) -> [(N, outs[j])]."""

    def __init__(self, d_in: int, outs: Sequence[int], hidden: int) -> None:
        super().__init__()
        self.outs = tuple(int(k) for k in outs)
        self.hidden = int(hidden)
        if self.hidden == 0:
            self.first = nn.Linear(d_in, sum(self.outs))
            self.second = None
        else:
            self.first = nn.Linear(d_in, self.hidden * len(self.outs))
            self.second = nn.ModuleList(nn.Linear(self.hidden, k) for k in self.outs)

    def forward(self, f: torch.Tensor) -> list[torch.Tensor]:
        h = self.first(f)                                    # (N, H * hidden) or (N, sum K)
        if self.second is None:
            return list(torch.split(h, self.outs, dim=1))
        h = torch.relu(h)
        w = self.hidden
        return [lin(h[:, j * w:(j + 1) * w]) for j, lin in enumerate(self.second)]


class AvatarEstimator(nn.Module):
    """ResNet trunk + heads. `n_continuous` continuous parameters share one head (sigmoid
    outputs); each entry of `num_options` is one discrete parameter's option count."""

    def __init__(self, config: EstimatorConfig, n_continuous: int,
                 num_options: Sequence[int]) -> None:
        super().__init__()
        self.config = config.validate()
        self.n_continuous = int(n_continuous)
        self.num_options = tuple(int(k) for k in num_options)
        if self.n_continuous < 0 or any(k < 1 for k in self.num_options):
            raise ValueError(f"need n_continuous >= 0 and option counts >= 1, got "
                             f"{n_continuous}, {list(num_options)}")
        if self.n_continuous == 0 and not self.num_options:
            raise ValueError("the estimator needs at least one parameter to predict")
        self.trunk = make_trunk(config.backbone)     # paper: last FC layer removed
        width = BACKBONES[config.backbone]
        # one head for all continuous parameters (if any), then one per discrete parameter
        outs = ([self.n_continuous] if self.n_continuous else []) + list(self.num_options)
        self.heads = Heads(width, outs, config.head_hidden)
        mean, std = NORMALIZATION[config.backbone]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        # What the trunk weights are; set by weights.load_backbone (plain data, no I/O here).
        self.backbone_info: dict[str, Any] = {"kind": "random", "path": None, "sha256": None}

    @classmethod
    def for_schema(cls, config: EstimatorConfig, schema) -> "AvatarEstimator":
        """The estimator for an EngineSchema's face-role parameters (random weights); style
        parameters get no head."""
        return cls(config, *head_layout(schema))

    def constructor_args(self) -> dict[str, Any]:
        """Plain-data arguments that rebuild this module with `estimator_from_args`."""
        return {"config": self.config.to_dict(), "n_continuous": self.n_continuous,
                "num_options": list(self.num_options)}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] -> (N, F) pooled trunk features."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"the estimator takes (N, 3, H, W) images, got {tuple(images.shape)}")
        x = (images + 1.0) * 0.5                             # [-1, 1] -> [0, 1]
        if self.config.color_norm == "grayworld":
            x = normalize_colour(x)
        x = (x - self.mean) / self.std                       # the trunk's scaling
        return self.trunk(x)                                 # (N, F)

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        """images (N, 3, S, S) float in [-1, 1] -> {"cont": (N, n_c) in (0, 1),
        "logits": [(N, K_j) for each discrete parameter]}."""
        f = self.features(images)                            # (N, F)
        out = self.heads(f)
        if self.n_continuous:
            cont = torch.sigmoid(out[0])                     # (N, n_c)
            logits = out[1:]                                 # [(N, K_j)]
        else:
            cont, logits = f.new_zeros((f.shape[0], 0)), out
        assert cont.shape == (f.shape[0], self.n_continuous), cont.shape
        assert len(logits) == len(self.num_options), len(logits)
        return {"cont": cont, "logits": logits}


def optimize_for_inference(model: AvatarEstimator) -> AvatarEstimator:
    """An eval-only copy for fast CPU prediction: every BatchNorm folded into the convolution
    before it, weights in channels_last layout, no gradients. Same outputs up to float
    rounding; its state dict differs, so keep the original for training and checkpoints."""
    import copy

    m = copy.deepcopy(model).eval()
    t = m.trunk
    if hasattr(t, "fuse_batchnorm"):
        t.fuse_batchnorm()
    else:
        _fuse_resnet(t)
    m = m.to(memory_format=torch.channels_last)
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _fuse_resnet(t: nn.Module) -> None:
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    t.conv1, t.bn1 = fuse_conv_bn_eval(t.conv1, t.bn1), nn.Identity()
    for layer in (t.layer1, t.layer2, t.layer3, t.layer4):
        for block in layer:                          # BasicBlock (conv1-2) / Bottleneck (1-3)
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
                if conv is not None and isinstance(bn, nn.BatchNorm2d):
                    setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                block.downsample = fuse_conv_bn_eval(block.downsample[0], block.downsample[1])


def estimator_from_args(args: Mapping[str, Any]) -> AvatarEstimator:
    """Inverse of AvatarEstimator.constructor_args (random weights)."""
    return AvatarEstimator(EstimatorConfig.from_dict(args["config"]), int(args["n_continuous"]),
                           [int(k) for k in args["num_options"]])


def head_layout(schema) -> tuple[int, tuple[int, ...]]:
    """(number of face continuous parameters, option counts of the face discrete ones): what
    the estimator predicts for `schema`."""
    return (len(schema.face_continuous),
            tuple(len(schema.discrete[j].options) for j in schema.face_discrete))


def check_schema(model: AvatarEstimator, schema) -> None:
    """Raise ValueError when the model's heads do not fit the schema's face parameters."""
    n_c, options = head_layout(schema)
    if model.n_continuous != n_c or model.num_options != options:
        raise ValueError(
            f"the estimator predicts {model.n_continuous} continuous and option counts "
            f"{list(model.num_options)}, but engine {schema.engine!r} (schema {schema.version}) "
            f"has {n_c} continuous and {list(options)} face parameters: use an estimator "
            f"trained on this engine")


def prepare_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float32 in [-1, 1] (bilinear, antialiased when
    shrinking). The one image path for training and prediction."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {tuple(images.shape)} "
                         f"{images.dtype}")
    x = images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)   # (N, 3, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > size or x.shape[-2] > size).clamp_(-1.0, 1.0)
    return x.contiguous()


def decode(outputs: Mapping[str, Any], schema, base=None):
    """Network outputs -> a VectorBatch that validates: argmax per discrete head, continuous
    values clamped to [0, 1] and mapped into each parameter's range. The heads give the face
    parameters; style parameters come from `base` (a VectorBatch of 1 or N rows, e.g. the
    user's own avatar) or, without it, from the engine's defaults. A NaN continuous output (a
    diverged model) raises InvalidVectorError naming the parameter."""
    from swiftavatar.engines.vectors import VectorBatch

    cont = outputs["cont"].detach().float().cpu()            # (N, n_c face)
    logits = outputs["logits"]
    n = cont.shape[0]
    face_c, face_d = list(schema.face_continuous), list(schema.face_discrete)
    if cont.shape != (n, len(face_c)) or len(logits) != len(face_d):
        raise ValueError(f"outputs have {cont.shape[1]} continuous values and {len(logits)} "
                         f"discrete heads; engine {schema.engine!r} has {len(face_c)} and "
                         f"{len(face_d)} face parameters")
    cont01 = np.full((n, schema.n_continuous), 0.5, np.float32)     # style columns: replaced
    disc = np.zeros((n, schema.n_discrete), np.int64)
    if face_c:
        cont01[:, face_c] = cont.clamp(0.0, 1.0).numpy()
    for j, lg in zip(face_d, logits):
        k = len(schema.discrete[j].options)
        if lg.shape != (n, k):
            raise ValueError(f"head {schema.discrete[j].name!r} gives {tuple(lg.shape)}, "
                             f"expected ({n}, {k})")
        disc[:, j] = lg.detach().float().cpu().argmax(dim=1).numpy()
    return VectorBatch.from_normalized(schema, cont01, disc).with_style_from(base)


__all__ = ["AvatarEstimator", "BACKBONES", "EstimatorConfig", "Heads", "NORMALIZATION",
           "check_schema", "decode", "estimator_from_args", "head_layout", "make_trunk",
           "optimize_for_inference", "prepare_images"]
