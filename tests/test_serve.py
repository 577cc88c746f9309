"""`swiftavatar serve`: the HTTP service on a real Ray Serve instance on 127.0.0.1 (started once
for the module on the session's local Ray, shut down at its end), with the shipped
`pretrained:toon` estimator. Every endpoint with good input, every bad input with its status
and message, 64 concurrent requests answered with the library predictor's vectors, and the
command's flags and config file."""
from __future__ import annotations

import base64
import io
import json
import socket
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from swiftavatar.checkset.records import SHIPPED_DIR
from swiftavatar.cli import main
from swiftavatar.face_align import mediapipe_available

requests = pytest.importorskip("requests")

MODEL = "pretrained:toon"
PHOTOS = [SHIPPED_DIR / "astronaut.jpg", SHIPPED_DIR / "grace_hopper.jpg"]
ALIGN = "mediapipe" if mediapipe_available() else "none"
needs_mediapipe = pytest.mark.skipif(ALIGN != "mediapipe", reason="mediapipe is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_local):
    """The service's URL: toon, small caps so the 413s are cheap to provoke."""
    from ray import serve

    from actors.serving.app import start_service
    from actors.serving.settings import ServeSettings

    settings = ServeSettings(models=(MODEL,), port=_free_port(), align=ALIGN,
                             max_upload_mb=0.5, max_megapixels=1.0, render_size=64,
                             max_render_size=256, max_batch_size=16)
    try:
        yield start_service(settings)
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def library():
    """The library predictors the service must agree with: {align: AvatarPredictor}."""
    from swiftavatar.predictor import AvatarPredictor

    out = {"none": AvatarPredictor(MODEL, align="none")}
    if ALIGN == "mediapipe":
        out["mediapipe"] = AvatarPredictor(MODEL, align="mediapipe")
    yield out
    for p in out.values():
        p.close()


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _image(seed: int, side: int = 80) -> np.ndarray:
    """A smooth random colour picture (a stand-in for a head crop)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((side, side), Image.BILINEAR))


def _decode_png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def _post_photo(url: str, data: bytes, *, as_json: bool = False, **fields) -> requests.Response:
    if as_json:
        return requests.post(f"{url}/v1/avatars", timeout=60,
                             json={"image": base64.b64encode(data).decode(), **fields})
    return requests.post(f"{url}/v1/avatars", files={"photo": ("photo.png", data)},
                         data={k: str(v) for k, v in fields.items()}, timeout=60)


def _same_vector(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        if isinstance(v, str):
            assert got[k] == v, k
        else:
            assert got[k] == pytest.approx(v, abs=1e-4), k


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_healthz_models_and_docs(service):
    assert requests.get(f"{service}/healthz", timeout=30).json() == {"status": "ok",
                                                                     "models": ["toon"]}
    root = requests.get(f"{service}/", timeout=30).json()
    assert root["docs"] == "/docs"
    assert "swagger" in requests.get(f"{service}/docs", timeout=30).text.lower()
    paths = requests.get(f"{service}/openapi.json", timeout=30).json()["paths"]
    assert {"/v1/avatars", "/v1/render", "/v1/models", "/healthz"} <= set(paths)
    (toon,) = requests.get(f"{service}/v1/models", timeout=30).json()["models"]
    from swiftavatar.engines.registry import get_engine

    schema = get_engine("toon").schema
    assert (toon["name"], toon["engine"], toon["schema_fingerprint"]) == (
        "toon", "toon", schema.fingerprint)
    params = {p["name"]: p for p in toon["parameters"]}
    assert list(params) == schema.param_names
    first_c, first_d = schema.continuous[0], schema.discrete[0]
    assert params[first_c.name]["kind"] == "continuous"
    assert (params[first_c.name]["low"], params[first_c.name]["high"]) == (first_c.low,
                                                                           first_c.high)
    assert params[first_d.name]["options"] == list(first_d.options)
    assert params[first_d.name]["default"] in first_d.options


@needs_mediapipe
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_photos_multipart_and_json_get_the_librarys_vectors_crops_and_renders(service,
                                                                              library):
    from swiftavatar.selfies import load_rgb_image

    want = library["mediapipe"].predict([load_rgb_image(p) for p in PHOTOS])
    for k, (path, ref) in enumerate(zip(PHOTOS, want)):
        r = _post_photo(service, path.read_bytes(), as_json=bool(k), model="toon", size=96)
        assert r.status_code == 200, r.text
        got = r.json()
        _same_vector(got["vector"], ref.vector[0].to_dict())
        assert got["model"] == {"name": "toon", "engine": "toon",
                                "schema_version": library["mediapipe"].schema.version,
                                "schema_fingerprint": library["mediapipe"].schema.fingerprint}
        assert got["face"]["score"] == pytest.approx(ref.face_score, abs=1e-3)
        assert got["face"]["box"] == pytest.approx(list(ref.face_box), abs=0.2)
        assert np.array_equal(_decode_png(got["crop_png"]), ref.crop)
        avatar = _decode_png(got["avatar_png"])
        assert avatar.shape == (96, 96, 3)
        # /v1/render of the same vector is the same picture; an edit changes it
        again = requests.post(f"{service}/v1/render", timeout=60,
                              json={"model": "toon", "vector": got["vector"], "size": 96})
        assert again.status_code == 200 and again.headers["content-type"] == "image/png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(again.content)).convert("RGB")),
                              avatar)
    edited = {**got["vector"], "hair_style": _other_option(got["vector"], "hair_style")}
    r = requests.post(f"{service}/v1/render", json={"vector": edited, "size": 96}, timeout=60)
    assert r.status_code == 200
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")),
                              avatar)


def _other_option(vector: dict, name: str) -> str:
    from swiftavatar.engines.registry import get_engine

    options = get_engine("toon").schema.param(name).options
    return next(o for o in options if o != vector[name])


def _bad_requests(url: str) -> list[tuple[str, requests.Response, int, str]]:
    """(what, response, expected status, words the message must hold)."""
    photo = PHOTOS[0].read_bytes()
    small_face = _png(np.asarray(Image.open(PHOTOS[0]).convert("RGB").resize((64, 64))))
    good = requests.post(f"{url}/v1/avatars", files={"photo": ("p.png", _png(_image(1)))},
                         data={"align": "none"}, timeout=60).json()["vector"]
    post = lambda path, **kw: requests.post(f"{url}{path}", timeout=60, **kw)  # noqa: E731
    cases = [
        ("unreadable image", _post_photo(url, b"not an image at all"), 400, "not an image"),
        ("tiny image", _post_photo(url, _png(_image(2, 20))), 400, "too small"),
        ("grayscale", _post_photo(url, _gray_png()), 400, "grayscale"),
        ("bad base64", post("/v1/avatars", json={"image": "%%%"}), 400, "base64"),
        ("no photo", post("/v1/avatars", files={"other": ("x", b"1")}), 400, "'photo'"),
        ("text body", post("/v1/avatars", data=b"hello",
                           headers={"content-type": "text/plain"}), 415, "multipart"),
        ("over the byte cap", _post_photo(url, b"\xff" * 600_000), 413, "0.5 MiB"),
        ("over the byte cap, JSON", _post_photo(url, b"\xff" * 600_000, as_json=True), 413,
         "0.5 MiB"),
        ("over the pixel cap", _post_photo(url, _png(np.full((1000, 1200, 3), 90, np.uint8))),
         413, "1200x1000 is too large"),
        ("unknown model", _post_photo(url, photo, model="../etc/passwd"), 404,
         "this server has: toon"),
        ("unknown model, render", post("/v1/render", json={"model": "x", "vector": good}),
         404, "unknown model 'x'"),
        ("bad size", _post_photo(url, photo, size=5000), 422, "size must be"),
        ("out of range", post("/v1/render", json={"vector": {**good, "face_width": 9.0}}),
         422, "face_width"),
        ("unknown option", post("/v1/render", json={"vector": {**good, "hair_style": "x"}}),
         422, "hair_style"),
        ("unknown parameter", post("/v1/render", json={"vector": {**good, "wings": 1}}), 422,
         "wings"),
        ("not a vector", post("/v1/render", json={"vector": [1, 2]}), 422, "mapping"),
        ("two photos", post("/v1/avatars", files=[("photo", ("a", photo)),
                                                  ("photo", ("b", photo))]), 400, "files"),
        ("no such route", requests.get(f"{url}/v2/nothing", timeout=30), 404, "Not Found"),
        ("render body not JSON", post("/v1/render", data=b"{",
                                      headers={"content-type": "application/json"}), 400,
         "not valid JSON"),
    ]
    if ALIGN == "mediapipe":
        cases += [
            ("no face", _post_photo(url, _png(np.full((160, 160, 3), 128, np.uint8))), 400,
             "no face found"),
            ("face too small", _post_photo(url, small_face), 400, "face found is too small"),
        ]
    return cases


def _gray_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64), 100, np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bad_requests_get_their_status_and_a_message_and_the_server_still_answers(service):
    wrong = []
    for what, r, status, words in _bad_requests(service):
        body = r.json()
        if r.status_code != status or words not in body.get("error", ""):
            wrong.append((what, r.status_code, body))
    assert not wrong, wrong
    assert requests.get(f"{service}/healthz", timeout=30).json()["status"] == "ok"
    r = _post_photo(service, _png(_image(3)), align="none")
    assert r.status_code == 200 and set(r.json()["vector"]) >= {"face_width", "hair_style"}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_64_concurrent_requests_get_the_librarys_vectors_in_batches(service, library):
    from ray import serve

    from actors.serving.app import APP_NAME, ESTIMATOR

    images = [_image(100 + i, 72 + i % 5 * 8) for i in range(64)]
    want = library["none"].predict(images)

    def ask(i: int) -> dict:
        r = _post_photo(service, _png(images[i]), as_json=bool(i % 2), align="none", size=32)
        assert r.status_code == 200, r.text
        return r.json()["vector"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(ask, range(64)))
    for g, w in zip(got, want):
        _same_vector(g, w.vector[0].to_dict())
    stats = serve.get_deployment_handle(ESTIMATOR, APP_NAME).stats.remote().result()
    assert stats["crops"] >= 64 and stats["max_batch"] >= 2, stats


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_crop_png_only_when_asked_and_the_ingress_times_each_stage(service):
    from ray import serve

    from actors.serving.app import APP_NAME, INGRESS

    ingress = serve.get_deployment_handle(INGRESS, APP_NAME)
    ingress.stage_times.remote(True).result()                      # a new window
    photo = _png(_image(5))
    full = _post_photo(service, photo, align="none").json()
    bare = _post_photo(service, photo, as_json=True, align="none", crop=False).json()
    assert full["crop_png"] and bare["crop_png"] is None
    assert bare["vector"] == full["vector"] and bare["avatar_png"] == full["avatar_png"]
    r = _post_photo(service, photo, align="none", crop="maybe")
    assert r.status_code == 422 and "crop must be true or false" in r.json()["error"]
    stages = ingress.stage_times.remote().result()
    assert set(stages) == {"read", "decode", "estimator", "render", "encode", "total"}
    assert stages["total"]["n"] == 2 and stages["total"]["p50_ms"] > 0


# ---- the command (no Ray) --------------------------------------------------------------------
def test_requests_in_flight_per_replica_come_from_the_flag_and_the_batch_size():
    from actors.serving.app import deployment_options
    from actors.serving.settings import ServeSettings

    opts = deployment_options(ServeSettings(models=(MODEL,), max_ongoing_requests=40,
                                            max_batch_size=32))
    ongoing = {name: o["max_ongoing_requests"] for name, o in opts.items()}
    assert ongoing == {"FaceFramer": 40, "Estimator": 64, "Renderer": 40, "Ingress": 256}


def test_stage_times_keep_a_window_of_medians():
    from actors.serving.stage_times import StageTimes

    times = StageTimes(window=3)
    for k in range(5):
        times.record({"read": k / 1000, "total": 2 * k / 1000})
    summary = times.summary()
    assert summary["read"] == {"n": 3, "p50_ms": pytest.approx(3.0),
                               "mean_ms": pytest.approx(3.0)}
    assert summary["total"]["p50_ms"] == pytest.approx(6.0)
    times.reset()
    assert times.summary() == {}


@pytest.mark.parametrize("flags, words", [
    (["--max-batch-size", "0"], "--max-batch-size must be in 1..1024"),
    (["--face-cpus", "0"], "--face-cpus must be in (0, 64]"),
    (["--max-replicas", "1", "--estimator-replicas", "2"], "--max-replicas must be 0 or"),
    (["--model", "toon=pretrained:avataaars"], "--model names a model twice"),
    (["--model", "pretrained:nosuch"], "--model: "),
])
def test_serve_names_a_bad_flag(flags, words, capsys):
    assert main(["serve", "--model", MODEL, *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_serve_needs_a_model(capsys):
    assert main(["serve"]) == 2
    assert "--model is required" in capsys.readouterr().err


def test_write_config_is_a_serve_deploy_config_for_the_same_settings(tmp_path, capsys):
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from actors.serving.app import build_app, settings_of

    out = tmp_path / "serve.yaml"
    assert main(["serve", "--model", MODEL, "--model", "av=pretrained:avataaars",
                 "--max-replicas", "4", "--estimator-gpus", "1", "--write-config",
                 str(out)]) == 0
    config = yaml.safe_load(out.read_text())
    ServeDeploySchema.model_validate(config)             # what `serve deploy` checks
    (app,) = config["applications"]
    settings = settings_of(app["args"])
    assert settings.named_models == {"toon": MODEL, "av": "pretrained:avataaars"}
    deployments = {d["name"]: d for d in app["deployments"]}
    assert deployments["Estimator"]["ray_actor_options"]["num_gpus"] == 1
    assert deployments["Renderer"]["autoscaling_config"]["max_replicas"] == 4
    assert build_app(app["args"]) is not None            # the import path builds it
    assert json.loads(capsys.readouterr().out)["config"] == str(out)


def test_the_cluster_serve_config_is_what_its_header_command_writes(tmp_path, capsys):
    """cluster/serve.yaml: a valid `serve deploy` config, the output of the command in its
    header; cluster/kuberay/rayservice.yaml runs the same applications."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    cluster = Path(__file__).resolve().parents[1] / "cluster"
    text = (cluster / "serve.yaml").read_text()
    header = text[text.index("Written by:"):].split("\n# `serve deploy`")[0].splitlines()[1:]
    argv = " ".join(line.lstrip("# ").rstrip("\\ ") for line in header).split()
    assert argv[:2] == ["swiftavatar", "serve"]
    argv[argv.index("--write-config") + 1] = str(tmp_path / "serve.yaml")
    assert main(argv[1:]) == 0
    config = yaml.safe_load(text)
    assert config == yaml.safe_load((tmp_path / "serve.yaml").read_text())
    ServeDeploySchema.model_validate(config)
    service = yaml.safe_load((cluster / "kuberay" / "rayservice.yaml").read_text())
    assert service["kind"] == "RayService"
    assert yaml.safe_load(service["spec"]["serveConfigV2"])["applications"] == \
        config["applications"]
    gpu = {d["name"]: d["ray_actor_options"]["num_gpus"]
           for d in config["applications"][0]["deployments"]}
    assert gpu == {"FaceFramer": 0, "Estimator": 1, "Renderer": 0, "Ingress": 0}

