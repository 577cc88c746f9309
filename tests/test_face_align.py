"""Face detection and alignment (mediapipe BlazeFace): the fit, the warp, the template against
the built-in face domain, a real photo, faces moved and shrunk inside a photo, and no face.

tests/data/astronaut.jpg is NASA's portrait of Eileen Collins (public domain), as scikit-image
ships it (`skimage.data.astronaut`), resized to 320 px."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swiftavatar.face_align import (TEMPLATE, FaceAligner, FaceNotFoundError, fit_scale_offset,
                                    mediapipe_available, warp_square)
from swiftavatar.faces import face_images
from swiftavatar.selfies import load_rgb_image

ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"
needs_mediapipe = pytest.mark.skipif(not mediapipe_available(),
                                     reason="mediapipe not installed (scripts/bootstrap.sh)")


def test_fit_scale_offset_recovers_a_known_map():
    src = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    s, t = fit_scale_offset(src, 3.0 * src + [5.0, -1.0])
    assert s == pytest.approx(3.0) and t == pytest.approx([5.0, -1.0])
    # least squares: dst x spread 4 over src spread 2 on one axis, 2 over 2 on the other ->
    # s = sum(sc*dc) / sum(sc^2) = (4 * 2 + 4 * 1) / 8 = 1.5
    dst = np.stack([src[:, 0] * 2.0, src[:, 1] * 1.0], axis=1)
    s, t = fit_scale_offset(src, dst)
    assert s == pytest.approx(1.5) and t == pytest.approx([0.5, -0.5])
    with pytest.raises(ValueError, match="coincide"):
        fit_scale_offset(np.ones((4, 2)), src)


def test_warp_square_maps_input_to_output_and_fills_with_the_border():
    img = np.full((40, 60, 3), 30, np.uint8)
    img[10:14, 20:24] = (250, 0, 0)                        # a red block at x 20-23, y 10-13
    out = warp_square(img, 2.0, np.array([-30.0, 2.0]), 32)  # u = 2x - 30, v = 2y + 2
    assert out.shape == (32, 32, 3)
    r, g, b = (int(v) for v in out[24, 14])                # x = 22, y = 11 (bicubic: ~250)
    assert r > 230 and g < 20 and b < 20
    assert tuple(out[24, 2]) == (30, 30, 30)               # x = 16: left of the block
    assert tuple(out[5, 5]) == (30, 30, 30)                # inside the photo, background
    far = warp_square(img, 0.25, np.array([20.0, 20.0]), 64)
    assert tuple(far[2, 2]) == (30, 30, 30)                # outside: the border's colour


@needs_mediapipe
@pytest.mark.slow
def test_the_template_is_where_blazeface_finds_the_domain_faces():
    images, _ = face_images(11, range(24), 128)             # (24, 128, 128, 3)
    with FaceAligner() as fa:
        found = [fa.detect(im) for im in images]
    assert all(d is not None and d.score > 0.7 for d in found)
    mean = np.mean([d.keypoints[:4] / 128 for d in found], axis=0)   # (4, 2)
    np.testing.assert_allclose(mean, TEMPLATE, atol=0.012)


@needs_mediapipe
def test_a_domain_face_moved_and_shrunk_in_a_photo_gets_the_same_crop():
    face = face_images(12, [3], 256)[0][0]                 # (256, 256, 3)
    canvas = np.full((300, 420, 3), (120, 140, 160), np.uint8)
    small = np.asarray(Image.fromarray(face).resize((150, 150), Image.LANCZOS))
    canvas[110:260, 230:380] = small                       # right and low in the photo
    with FaceAligner() as fa:
        want, direct = fa.align(face, 128)
        crop, how = fa.align(canvas, 128)
        other, _ = fa.align(face_images(12, [4], 256)[0][0], 128)   # another person
    assert how.scale == pytest.approx(direct.scale * 256 / 150, rel=0.05)
    centre = np.s_[24:104, 24:104]                         # the face (outside: each photo's fill)
    diff = lambda a, b: np.abs(a[centre].astype(float) - b[centre].astype(float)).mean()  # noqa
    assert diff(crop, want) < 0.35 * diff(other, want)     # measured 15.7 vs 75.5


@needs_mediapipe
def test_a_real_photo_is_detected_and_framed_like_the_domain():
    img = load_rgb_image(ASTRONAUT)                        # (320, 320, 3)
    with FaceAligner() as fa:
        crop, how = fa.align(img, 128, name="astronaut.jpg")
        again = fa.detect(crop)
    assert how.detection.score > 0.8
    x, y, w, h = how.detection.box                        # her face: upper middle-left
    assert 80 < x + w / 2 < 200 and 40 < y + h / 2 < 130
    assert crop.shape == (128, 128, 3) and 128 / how.scale < 160   # a head crop of the photo
    np.testing.assert_allclose(again.keypoints[:4] / 128, TEMPLATE, atol=0.04)


@needs_mediapipe
def test_no_face_and_a_face_too_small_are_refused_by_name():
    yy, xx = np.mgrid[0:200, 0:300]
    sky = np.stack([xx * 0.8, yy, np.full_like(xx, 180)], -1).astype(np.uint8)
    tiny = np.full((480, 480, 3), 200, np.uint8)
    tiny[200:216, 200:216] = np.asarray(
        Image.fromarray(face_images(12, [3], 128)[0][0]).resize((16, 16), Image.LANCZOS))
    with FaceAligner() as fa:
        with pytest.raises(FaceNotFoundError, match="sky.png: no face found"):
            fa.align(sky, 64, name="sky.png")
        with pytest.raises(FaceNotFoundError, match="tiny.png: "):
            fa.align(tiny, 64, name="tiny.png")
    with pytest.raises(ValueError, match="min_confidence"):
        FaceAligner(1.5)
