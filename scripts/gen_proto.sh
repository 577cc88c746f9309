#!/usr/bin/env bash
# Regenerates the checked-in gRPC stubs (engine_pb2.py, engine_pb2_grpc.py) from
# swiftavatar/engines/proto/engine.proto with grpcio-tools (in the test extras: pip install -e ".[test]").
# Usage: scripts/gen_proto.sh [OUT_ROOT]   OUT_ROOT defaults to the repository root (in place);
# the stubs land in OUT_ROOT/swiftavatar/engines/proto/. PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-.}
mkdir -p "$OUT"
# -I . keeps the package path in the file name, so the generated grpc module imports
# `from swiftavatar.engines.proto import engine_pb2`.
"$PY" -m grpc_tools.protoc -I . --python_out="$OUT" --grpc_python_out="$OUT" \
  swiftavatar/engines/proto/engine.proto
