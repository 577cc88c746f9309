"""Remote engines over gRPC: real servers on 127.0.0.1 (port 0), the client, the stubs and the
`swiftavatar engine serve` command."""
from __future__ import annotations

import filecmp
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import REPO_ROOT, subprocess_env
from engines_for_tests import TARGET, SquaresEngine
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.base import EngineError, EngineUnavailableError, RenderOutput
from swiftavatar.engines.grpc_auth import TOKEN_ENV
from swiftavatar.engines.grpc_engine import GrpcEngine, RemoteRowsError
from swiftavatar.engines.grpc_server import exposure_warning, serve
from swiftavatar.engines.proto import engine_pb2 as pb, engine_pb2_grpc as pb_grpc
from swiftavatar.engines.proto import reply_bytes_bound
from swiftavatar.engines.proto.reply_encoder import encode_render_reply
from swiftavatar.engines.registry import EngineSpec, get_engine
from swiftavatar.engines.schema import VectorBatch

pytestmark = pytest.mark.timeout(60)


class SlowSquares(SquaresEngine):
    """SquaresEngine that takes `delay_s` per render call (for deadlines)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        time.sleep(self.delay_s)
        return super()._render(batch, size)


class Served:
    def __init__(self, engine, **kw) -> None:
        self.engine = engine
        self.server, self.port = serve(engine, **kw)
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(0).wait()


@pytest.fixture
def squares():
    served = Served(SquaresEngine())
    try:
        yield served
    finally:
        served.stop()


def _renderable(engine, n: int, seed: int = 0) -> VectorBatch:
    """n sampled SquaresEngine vectors with no 'broken' shape."""
    batch = engine.schema.sample(seed=seed, ids=range(n))
    batch.discrete[:, 0] %= 2
    return batch


def _assert_same_pixels(out: RenderOutput, want: RenderOutput) -> None:
    assert np.array_equal(out.images, want.images)
    assert (out.masks is None) == (want.masks is None)
    if want.masks is not None:
        assert np.array_equal(out.masks, want.masks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- round trips ------------------------------------------------------------------------
def test_round_trip_is_pixel_identical(squares):
    local = squares.engine
    batch = _renderable(local, 8)
    with GrpcEngine(squares.address, batch_size=3) as client:  # 3 requests: 3 + 3 + 2
        assert client.name == "grpc"
        assert client.schema == local.schema
        assert client.schema.fingerprint == local.schema.fingerprint
        assert client.default_size == local.default_size
        remote = client.render(batch, 40)
    want = local.render(batch, 40)
    assert np.array_equal(remote.images, want.images)
    assert remote.masks is not None and np.array_equal(remote.masks, want.masks)


def test_round_trip_avataaars():
    from swiftavatar.engines.avataaars import AvataaarsEngine

    served = Served(AvataaarsEngine())
    try:
        with GrpcEngine(served.address) as client:
            assert client.schema.fingerprint == served.engine.schema.fingerprint
            batch = served.engine.schema.sample(seed=0, ids=range(3))
            out = client.render(batch, 64)
        assert out.masks is None
        assert np.array_equal(out.images, served.engine.render(batch, 64).images)
    finally:
        served.stop()


def test_round_trip_toon():
    from swiftavatar.engines.toon import ToonEngine

    served = Served(ToonEngine())
    try:
        with get_engine(f"grpc://{served.address}") as client:
            assert client.schema.fingerprint == served.engine.schema.fingerprint
            batch = served.engine.schema.sample(seed=0, ids=range(4))
            out = client.render(batch, 64)
        _assert_same_pixels(out, served.engine.render(batch, 64))
    finally:
        served.stop()


def test_registry_builds_clients(squares):
    spec = EngineSpec.parse(f"grpc://{squares.address}", {"timeout_s": 5})
    with spec.build() as a, get_engine("grpc", address=squares.address) as b:
        assert isinstance(a, GrpcEngine) and a.timeout_s == 5
        assert a.schema.fingerprint == b.schema.fingerprint == squares.engine.schema.fingerprint


# ---- per-vector errors --------------------------------------------------------------------
def test_server_reports_bad_vectors_per_row(squares):
    good = pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[1, 0])
    vectors = [
        good,
        pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[7, 0]),  # shape index out of range
        pb.Vector(continuous=[float("nan"), 0.5, 0.0], discrete=[0, 0]),
        pb.Vector(continuous=[0.5, 0.5, 0.9], discrete=[0, 1]),  # offset_x > 0.2
        pb.Vector(continuous=[0.5, 0.5], discrete=[0, 0]),  # too short
        pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[2, 0]),  # 'broken': engine fails
        good,
    ]
    with grpc.insecure_channel(squares.address) as channel:
        reply = pb_grpc.AvatarEngineStub(channel).Render(
            pb.RenderRequest(vectors=vectors, size=32, want_masks=True), timeout=10)
    errors = [r.error for r in reply.results]
    assert len(errors) == len(vectors)
    assert errors[0] == errors[6] == ""
    assert "'shape'" in errors[1] and "out of range" in errors[1]
    assert "'hue'" in errors[2] and "NaN" in errors[2]
    assert "'offset_x'" in errors[3]
    assert "expected 3 continuous values (hue, scale, offset_x), got 2" in errors[4]
    assert "broken" in errors[5]
    for i in (0, 6):
        assert reply.results[i].image_png and reply.results[i].mask_png
    for i in range(1, 6):
        assert not reply.results[i].image_png


def test_client_raises_naming_the_row(squares):
    batch = _renderable(squares.engine, 6)
    batch.discrete[4, 0] = 2  # 'broken': valid for the schema, but the engine cannot render it
    with GrpcEngine(squares.address) as client:
        with pytest.raises(RemoteRowsError, match=r"could not render row 4: .*broken") as info:
            client.render(batch, 32)
        assert list(info.value.rows) == [4]
        # the other rows still render, one at a time as the rendering stage does
        assert len(client.render(batch.select([0, 1, 2, 3, 5]), 32)) == 5
    with GrpcEngine(squares.address, batch_size=2, in_flight=3) as client:  # pipelined
        with pytest.raises(RemoteRowsError, match=r"could not render row 4: .*broken") as info:
            client.render(batch, 32)
        assert list(info.value.rows) == [4]


def test_whole_request_errors_are_statuses(squares):
    with grpc.insecure_channel(squares.address) as channel:
        stub = pb_grpc.AvatarEngineStub(channel)
        vec = pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[0, 0])
        with pytest.raises(grpc.RpcError) as info:
            stub.Render(pb.RenderRequest(vectors=[vec], size=8), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "size 8" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.Render(pb.RenderRequest(vectors=[vec], schema_fingerprint="0123456789ab"),
                        timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "Describe again" in info.value.details()


# ---- message size limits and caps on work per request ----------------------------------------
def _stub_render(address: str, request: pb.RenderRequest) -> pb.RenderReply:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.AvatarEngineStub(channel).Render(request, timeout=10)


def _refused(address: str, request: pb.RenderRequest) -> str:
    """The details of a Render refused with RESOURCE_EXHAUSTED."""
    with pytest.raises(grpc.RpcError) as info:
        _stub_render(address, request)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
    return info.value.details()


VEC = pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[0, 0])


def test_message_limits():
    engine = SquaresEngine()
    batch = _renderable(engine, 8, seed=5)
    local = engine.render(batch, 128)
    engine.calls = 0
    limit = reply_bytes_bound(1, 128, masks=True, raw=True) + 256  # one 128-px reply fits
    served = Served(engine, max_message_bytes=limit)
    try:
        assert "larger than max" in _refused(  # an oversized request: gRPC's own check
            served.address, pb.RenderRequest(vectors=[VEC] * 5000, size=32))
        details = _refused(served.address, pb.RenderRequest(  # a reply that could not fit
            vectors=[VEC] * 2, size=128, want_masks=True, raw_pixels=True))
        assert "message limit" in details and "--max-message-mb" in details
        assert engine.calls == 0  # refused before rendering
        with GrpcEngine(served.address, batch_size=8) as client:  # the client splits batches
            assert client.rows_per_request(128) == 1
            out = client.render(batch, 128)
            assert engine.calls == 8
            assert np.array_equal(out.images, local.images)
            assert np.array_equal(out.masks, local.masks)
            with pytest.raises(EngineError, match="does not fit the message limit"):
                client.render(batch.select([0]), 1024)
    finally:
        served.stop()


def test_requests_over_the_caps_are_refused_before_rendering():
    engine = SquaresEngine()
    served = Served(engine, max_vectors_per_request=16, max_pixels_per_request=10 * 64 * 64)
    try:
        with grpc.insecure_channel(served.address) as channel:
            described = pb_grpc.AvatarEngineStub(channel).Describe(pb.DescribeRequest(),
                                                                   timeout=10)
        assert described.max_vectors_per_request == 16
        assert described.max_pixels_per_request == 10 * 64 * 64
        assert described.raw_pixels
        details = _refused(served.address, pb.RenderRequest(vectors=[VEC] * 17, size=32))
        assert details.startswith("17 vectors in one request; this server renders at most 16")
        assert "--max-vectors-per-request" in details
        details = _refused(served.address, pb.RenderRequest(vectors=[VEC] * 11, size=64))
        assert "at most 40960 pixels per request" in details
        assert "--max-pixels-per-request" in details
        assert engine.calls == 0  # nothing was rendered
        assert len(_stub_render(served.address,
                                pb.RenderRequest(vectors=[VEC] * 16, size=32)).results) == 16
        assert engine.calls == 1
    finally:
        served.stop()


def test_client_splits_batches_to_fit_the_server_caps():
    engine = SquaresEngine()
    batch = _renderable(engine, 100, seed=3)
    served = Served(engine, max_vectors_per_request=16, max_pixels_per_request=10 * 64 * 64)
    try:
        with GrpcEngine(served.address, batch_size=32, in_flight=3) as client:
            out = client.render(batch, 32)  # 16 vectors per request
            assert engine.calls == 7
            want = engine.render(batch, 32)
            assert len(out) == 100
            assert np.array_equal(out.images, want.images)
            assert np.array_equal(out.masks, want.masks)
            engine.calls = 0
            out = client.render(batch, 64)  # 10 per request: the pixel cap
            assert engine.calls == 10
            assert np.array_equal(out.images, engine.render(batch, 64).images)
            with pytest.raises(EngineError, match="--max-pixels-per-request"):
                client.render(batch.select([0]), 256)  # one render is over the cap
    finally:
        served.stop()


def test_raw_pixels_are_identical_to_in_process_and_to_png():
    from swiftavatar.engines.toon import ToonEngine

    served = Served(ToonEngine())
    try:
        batch = served.engine.schema.sample(seed=4, ids=range(6))
        reply = _stub_render(served.address, pb.RenderRequest(
            vectors=[pb.Vector(continuous=batch.continuous[0].tolist(),
                               discrete=batch.discrete[0].tolist())],
            size=48, want_masks=True, raw_pixels=True))
        assert len(reply.results[0].image_raw) == 48 * 48 * 3 and not reply.results[0].image_png
        want = served.engine.render(batch, 48)
        with GrpcEngine(served.address, batch_size=4) as raw, \
                GrpcEngine(served.address, batch_size=4, raw_pixels=False) as png:
            assert raw.raw_pixels and not png.raw_pixels
            for client in (raw, png):
                out = client.render(batch, 48)
                assert out.images.dtype == np.uint8 and out.images.flags.writeable
                _assert_same_pixels(out, want)
    finally:
        served.stop()


def test_the_reply_encoder_writes_what_protobuf_writes():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 130, 130, 3), dtype=np.uint8)  # 50 KB: 3-byte lengths
    results = [
        {"image_raw": memoryview(pixels[0]).cast("B"), "mask_raw": pixels[1, :, :, 0].tobytes()},
        {"error": "parameter 'hue': NaN \u00e9".encode()},
        {},
        {"mask_png": b"m" * 200, "image_png": b"\x89PNG" * 40},  # any order in, field order out
        {"image_raw": pixels[2].tobytes(), "mask_raw": b""},  # empty fields are left out
    ]
    want = pb.RenderReply(results=[pb.RenderResult(**{
        k: bytes(v).decode() if k == "error" else bytes(v) for k, v in r.items()})
        for r in results])
    assert encode_render_reply(results) == want.SerializeToString()
    assert encode_render_reply([]) == b""


def test_exposure_warning_names_every_non_loopback_host():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert exposure_warning(host) == "", host
    for host in ("0.0.0.0", "::", "192.168.1.5", "enginehost"):
        warning = exposure_warning(host)
        assert "no authentication" in warning and host in warning and "\n" not in warning
        assert exposure_warning(host, token=True) == ""


def test_shared_token(monkeypatch):
    engine = SquaresEngine()
    served = Served(engine, token="s3cret-token")
    try:
        monkeypatch.delenv(TOKEN_ENV, raising=False)
        with pytest.raises(EngineError, match=f"Describe failed with UNAUTHENTICATED: .*"
                                              f"shared token: set {TOKEN_ENV}"):
            GrpcEngine(served.address)
        monkeypatch.setenv(TOKEN_ENV, "s3cret-tokem")
        with pytest.raises(EngineError, match="UNAUTHENTICATED"):
            GrpcEngine(served.address)
        with pytest.raises(grpc.RpcError) as info:
            _stub_render(served.address, pb.RenderRequest(vectors=[VEC], size=32))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert engine.calls == 0
        monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
        batch = _renderable(engine, 5)
        with GrpcEngine(served.address, batch_size=2) as client:
            _assert_same_pixels(client.render(batch, 32), engine.render(batch, 32))
    finally:
        served.stop()


def test_cli_token_needs_the_secret_in_the_environment(monkeypatch, capsys):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert cli_main(["engine", "serve", TARGET, "--port", "0", "--token"]) == 2
    err = capsys.readouterr().err
    assert f"--token needs the shared secret in ${TOKEN_ENV}" in err
    assert len(err.strip().splitlines()) == 1


# ---- unreachable and slow servers ------------------------------------------------------------
def test_unreachable_server_fails_fast_with_a_hint():
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(EngineError) as info:
        GrpcEngine(f"127.0.0.1:{port}", retries=2, backoff_s=0.05, timeout_s=2)
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert f"gRPC engine at 127.0.0.1:{port} is unreachable after 2 attempts" in msg
    assert f"swiftavatar engine serve NAME --port {port}" in msg


def test_server_gone_mid_session(squares):
    client = GrpcEngine(squares.address, retries=2, backoff_s=0.05, timeout_s=2)
    try:
        batch = _renderable(squares.engine, 2)
        assert len(client.render(batch, 32)) == 2
        squares.stop()
        with pytest.raises(EngineUnavailableError, match="is unreachable after 2 attempts"):
            client.render(batch, 32)
    finally:
        client.close()
        client.close()  # idempotent
    with pytest.raises(EngineUnavailableError, match="closed"):
        client.render(batch, 32)


def test_server_replaced_by_another_engine_is_unavailable_not_a_row_error():
    first = Served(SquaresEngine())
    client = GrpcEngine(first.address, retries=5, backoff_s=0.2, timeout_s=5)
    try:
        batch = _renderable(first.engine, 2)
        assert len(client.render(batch, 32)) == 2
        first.stop()
        second, _ = serve(SquaresEngine(masks=False), port=first.port)  # another schema
        try:
            with pytest.raises(EngineUnavailableError, match="FAILED_PRECONDITION.*Describe"):
                client.render(batch, 32)
        finally:
            second.stop(0).wait()
    finally:
        client.close()


def test_server_down_is_one_line_from_the_cli(capsys):
    port = _free_port()
    assert cli_main(["engines", "describe", f"grpc://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"swiftavatar engines: engine error: gRPC engine at 127.0.0.1:{port} "
                          f"is unreachable after 3 attempts")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_deadline_exceeded_is_retried_then_reported():
    served = Served(SlowSquares(delay_s=0.6))
    try:
        with GrpcEngine(served.address, timeout_s=0.15, retries=2, backoff_s=0.01) as client:
            start = time.monotonic()
            with pytest.raises(EngineError, match=r"did not answer Render within 0.15 s in 2 "
                                                  r"attempts"):
                client.render(_renderable(served.engine, 1), 32)
            assert time.monotonic() - start < 3
    finally:
        served.stop()


def test_pipelined_requests_wait_their_turn_within_their_deadlines():
    """Requests queued behind others on the server get deadlines that allow for the wait: no
    request times out, none is rendered twice."""
    served = Served(SlowSquares(delay_s=0.25))  # 6 requests: the last is answered after 1.5 s
    try:
        batch = _renderable(served.engine, 6)
        with GrpcEngine(served.address, timeout_s=0.8, retries=1, batch_size=1,
                        in_flight=6) as client:
            out = client.render(batch, 32)
        assert served.engine.calls == 6
        assert np.array_equal(out.images, served.engine.render(batch, 32).images)
    finally:
        served.stop()


def test_bad_client_options():
    with pytest.raises(ValueError, match="HOST:PORT"):
        GrpcEngine("localhost")
    with pytest.raises(ValueError, match="batch_size"):
        GrpcEngine("127.0.0.1:1", batch_size=0)


def test_busy_port_is_an_error(squares):
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{squares.port}"):
        serve(SquaresEngine(), port=squares.port)


# ---- generated stubs --------------------------------------------------------------------------
def test_checked_in_stubs_match_the_proto(tmp_path: Path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the dev extra) regenerates stubs")
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)],
                   check=True, env=env, timeout=60)
    rel = Path("swiftavatar/engines/proto")
    for name in ("engine_pb2.py", "engine_pb2_grpc.py"):
        assert filecmp.cmp(tmp_path / rel / name, REPO_ROOT / rel / name, shallow=False), (
            f"{rel / name} is stale: run scripts/gen_proto.sh")


# ---- the CLI ----------------------------------------------------------------------------------
def _read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        raise AssertionError(f"no output within {timeout_s} s")
    return proc.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_engine_serve_subprocess(stop_signal):
    cmd = [sys.executable, "-m", "swiftavatar", "engine", "serve", TARGET, "--port", "0",
           "--workers", "2"]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = _read_line(proc, 30)
        assert line.startswith("serving engine squares") and " on 127.0.0.1:" in line, line
        address = line.strip().rsplit(" on ", 1)[1]
        local = SquaresEngine()
        batch = _renderable(local, 3)
        with get_engine(f"grpc://{address}") as client:
            assert client.schema.fingerprint == local.schema.fingerprint
            assert np.array_equal(client.render(batch, 32).images, local.render(batch, 32).images)
        proc.send_signal(stop_signal)  # SIGINT is what Ctrl-C sends
        assert proc.wait(timeout=15) == 0
        err = proc.stderr.read()
        assert "stopped" in err and "no authentication" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_engine_serve_on_every_interface_warns_and_states_its_caps():
    cmd = [sys.executable, "-m", "swiftavatar", "engine", "serve", TARGET, "--host", "0.0.0.0",
           "--port", "0", "--max-vectors-per-request", "8", "--max-pixels-per-request", "9000"]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = _read_line(proc, 30)
        assert " on 0.0.0.0:" in line, line
        port = int(line.strip().rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            described = pb_grpc.AvatarEngineStub(channel).Describe(pb.DescribeRequest(),
                                                                   timeout=10)
        assert (described.max_vectors_per_request, described.max_pixels_per_request) == (8, 9000)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        warnings = [w for w in proc.stderr.read().splitlines() if "no authentication" in w]
        assert len(warnings) == 1
        assert warnings[0].startswith("swiftavatar engine serve: warning: listening on 0.0.0.0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
