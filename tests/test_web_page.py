"""The web page at `/` in a real headless Chromium (Debian's `chromium`, driven over the
DevTools protocol), against a real Serve instance on 127.0.0.1 with the shipped
`pretrained:toon` estimator: an unreadable file shows the API's message; a photo shows the
API's crop and avatar and one control per schema parameter; moving a slider and a picker
re-renders the avatar; the downloaded vector validates against the schema and the downloaded
PNG is the avatar shown; nothing is loaded from anywhere but the server."""
from __future__ import annotations

import base64
import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdp_browser import HOW_TO_INSTALL, Chromium, find_chromium
from swiftavatar.checkset.records import SHIPPED_DIR
from swiftavatar.face_align import mediapipe_available

requests = pytest.importorskip("requests")
pytest.importorskip("websockets.sync.client")

MODEL = "pretrained:toon"
PHOTO = SHIPPED_DIR / "astronaut.jpg"
ALIGN = "mediapipe" if mediapipe_available() else "none"
CHROMIUM = find_chromium()
pytestmark = [pytest.mark.ray, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason=HOW_TO_INSTALL)]
STATE = "document.getElementById('app').dataset.state"


@pytest.fixture(scope="module")
def service(ray_local):
    from ray import serve

    from actors.serving.app import start_service
    from actors.serving.settings import ServeSettings
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ServeSettings(models=(MODEL,), port=port, align=ALIGN, render_size=128,
                             max_batch_size=4)
    try:
        yield start_service(settings)
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def toon(service):
    (model,) = requests.get(f"{service}/v1/models", timeout=60).json()["models"]
    return model


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _wait_file(path: Path, timeout: float = 20.0) -> bytes:
    """A finished download (Chromium renames it from .crdownload when done)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no download {path.name} in {timeout:g} s")
        time.sleep(0.05)
    return path.read_bytes()


def _edit(page: Chromium, selector: str, key: str) -> bytes:
    """Press `key` on a control, wait for the re-render, return the new avatar's PNG."""
    before = page.evaluate("document.getElementById('avatar').src")
    page.press(selector, key)
    page.wait_for(f"document.getElementById('avatar').src !== {before!r} && {STATE} === "
                  f"'ready'", timeout=30, what=f"a render after {key} on {selector}")
    return page.image_bytes("#avatar")


@pytest.mark.timeout(120)
def test_page_is_served_beside_the_api(service):
    page = requests.get(f"{service}/", headers={"Accept": "text/html"}, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script src="/static/page.js">' in page.text
    assert requests.get(f"{service}/", timeout=60).json()["docs"] == "/docs"   # API clients
    for name, kind in (("page.js", "text/javascript"), ("page.css", "text/css")):
        r = requests.get(f"{service}/static/{name}", timeout=60)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    for bad in ("index.py", "..%2Fhttp_api.py", "%2E%2E/settings.py"):
        r = requests.get(f"{service}/static/{bad}", timeout=60)
        assert r.status_code == 404 and "error" in r.json(), bad


@pytest.mark.timeout(150)
def test_photo_to_avatar_edit_and_download_in_chromium(service, toon, tmp_path):
    junk = tmp_path / "not_a_photo.jpg"
    junk.write_bytes(b"this is not an image")
    want_error = requests.post(f"{service}/v1/avatars", files={"photo": junk.open("rb")},
                               data={"model": "toon"}, timeout=60).json()["error"]
    want = requests.post(f"{service}/v1/avatars", files={"photo": PHOTO.open("rb")},
                         data={"model": "toon"}, timeout=60).json()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Chromium(CHROMIUM) as page:
        page.call("Browser.setDownloadBehavior", {"behavior": "allow",
                                                  "downloadPath": str(downloads)}, page=False)
        page.goto(f"{service}/")
        page.wait_for(f"{STATE} === 'idle'", what="the models to load")
        assert page.evaluate("document.getElementById('model').value") == "toon"

        page.set_files("#photo", [junk])
        page.wait_for(f"{STATE} === 'error'", what="the API's error")
        assert page.evaluate("document.getElementById('error').textContent") == want_error

        page.set_files("#photo", [PHOTO])
        page.wait_for(f"{STATE} === 'ready'", timeout=60, what="the avatar")
        assert page.evaluate("document.getElementById('error').hidden")
        assert page.image_bytes("#crop") == base64.b64decode(want["crop_png"])
        first = page.image_bytes("#avatar")
        assert first == base64.b64decode(want["avatar_png"])
        # one labelled control per parameter, prefilled with the prediction
        controls = page.evaluate(
            "[...document.querySelectorAll('#controls input, #controls select')].map(e => "
            "[e.name, e.tagName, e.value, document.querySelector(`label[for=${e.id}]`) "
            "!== null])")
        assert [c[0] for c in controls] == [p["name"] for p in toon["parameters"]]
        for (name, tag, value, labelled), p in zip(controls, toon["parameters"]):
            assert labelled, name
            if p["kind"] == "continuous":
                assert tag == "INPUT" and float(value) == pytest.approx(
                    want["vector"][name], abs=(p["high"] - p["low"]) / 200), name
            else:
                assert tag == "SELECT" and value == want["vector"][name], name

        slider = next(p for p in toon["parameters"] if p["kind"] == "continuous")
        picker = next(p for p in toon["parameters"] if p["kind"] == "discrete")
        to_high = want["vector"][slider["name"]] < (slider["low"] + slider["high"]) / 2
        moved = _edit(page, f"#param-{slider['name']}", "End" if to_high else "Home")
        assert not np.array_equal(_pixels(moved), _pixels(first))
        down = picker["options"].index(want["vector"][picker["name"]]) + 1 < len(
            picker["options"])
        picked = _edit(page, f"#param-{picker['name']}", "ArrowDown" if down else "ArrowUp")
        assert not np.array_equal(_pixels(picked), _pixels(moved))

        page.click("#save-vector")
        vector = json.loads(_wait_file(downloads / "avatar-toon.json"))
        page.click("#save-png")
        assert _wait_file(downloads / "avatar-toon.png") == picked
        urls = page.requested_urls()
    from swiftavatar.engines.registry import get_engine

    get_engine("toon").schema.vector(vector)            # raises InvalidVectorError if not
    assert vector[slider["name"]] == (slider["high"] if to_high else slider["low"])
    option = picker["options"].index(want["vector"][picker["name"]]) + (1 if down else -1)
    assert vector[picker["name"]] == picker["options"][option]
    assert {k: v for k, v in vector.items() if k not in (slider["name"], picker["name"])} == {
        k: v for k, v in want["vector"].items() if k not in (slider["name"], picker["name"])}
    outside = [u for u in urls if not u.startswith((f"{service}/", "data:", "blob:"))]
    assert urls and not outside
    assert urls.count(f"{service}/v1/render") == 2          # one (debounced) render per edit


@pytest.mark.timeout(120)
def test_camera_photo_goes_to_the_api(service):
    """Chromium's fake camera (a moving test pattern): the camera button shows, a capture
    is sent to /v1/avatars and the page shows what the API answered."""
    with Chromium(CHROMIUM, fake_camera=True) as page:
        page.goto(f"{service}/")
        page.wait_for(f"{STATE} === 'idle' && !document.getElementById('camera').hidden",
                      what="the models and the camera button")
        page.click("#camera")
        page.wait_for("document.getElementById('video').videoWidth > 0",
                      what="the camera's picture")
        page.click("#capture")
        state = page.wait_for(f"['ready', 'error'].includes({STATE}) && {STATE}", timeout=60,
                              what="the API's answer to the capture")
        assert page.evaluate("document.getElementById('camera-box').hidden")   # camera off
        posts = [e["params"]["request"] for e in page.events
                 if e.get("method") == "Network.requestWillBeSent"
                 and e["params"]["request"]["url"] == f"{service}/v1/avatars"]
        assert [r["method"] for r in posts] == ["POST"]
        if state == "ready":       # BlazeFace may or may not see a face in the pattern
            assert not page.evaluate("document.getElementById('avatar').hidden")
            assert not page.evaluate("document.getElementById('controls').hidden")
        else:
            assert page.evaluate("document.getElementById('error').textContent")
