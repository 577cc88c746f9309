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
from swiftavatar.engines.grpc_engine import GrpcEngine, RemoteRowsError
from swiftavatar.engines.grpc_server import serve
from swiftavatar.engines.proto import encode_png, engine_pb2 as pb, engine_pb2_grpc as pb_grpc
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
        want = served.engine.render(batch, 64)
        assert np.array_equal(out.images, want.images)
        assert (out.masks is None) == (want.masks is None)
        if want.masks is not None:
            assert np.array_equal(out.masks, want.masks)
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


# ---- message size limits ------------------------------------------------------------------
def test_message_limits():
    engine = SquaresEngine()
    batch = _renderable(engine, 8, seed=5)
    local = engine.render(batch, 128)
    per_row = [len(encode_png(i)) + len(encode_png(m)) + 16
               for i, m in zip(local.images, local.masks)]
    limit = max(1024, max(per_row) + 256)
    assert sum(per_row) > 2 * limit  # one reply for the whole batch cannot fit
    served = Served(engine, max_message_bytes=limit)
    try:
        with grpc.insecure_channel(served.address) as channel:  # an oversized request
            vec = pb.Vector(continuous=[0.5, 0.5, 0.0], discrete=[0, 0])
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.AvatarEngineStub(channel).Render(
                    pb.RenderRequest(vectors=[vec] * 500, size=32), timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in info.value.details()
        with GrpcEngine(served.address, batch_size=8) as client:  # the client splits batches
            out = client.render(batch, 128)
            assert np.array_equal(out.images, local.images)
            assert np.array_equal(out.masks, local.masks)
            with pytest.raises(EngineError, match="does not fit the message limit"):
                client.render(batch.select([0]), 1024)
    finally:
        served.stop()


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
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
