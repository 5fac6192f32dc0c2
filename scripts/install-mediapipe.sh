#!/bin/sh
# Make the virtual environment the background-removal model runs in (docs/models/vision.md).
#
# mediapipe 0.10.21 needs numpy<2, and genyard's own environment must not be pinned to it,
# so mediapipe gets a Python of its own: .venv-mediapipe (or the directory given as $1),
# which genyard drives as a subprocess (src/genyard/providers/local/mediapipe_runner.py).
# GENYARD_MEDIAPIPE_PYTHON points genyard at a Python elsewhere.
#
# mediapipe is installed with --no-deps: of its declared dependencies, selfie segmentation
# needs only numpy<2 and protobuf 4 (the runner imports the selfie solution without
# mediapipe's package __init__, which would import OpenCV, matplotlib, jax and the rest
# for other solutions). Pillow reads and writes the images.
#
# A no-op (one quick check) when the environment is already there and works.
# PYTHON picks the interpreter (default python3.11, else python3: mediapipe 0.10.21 has
# wheels for CPython 3.9-3.12).
set -eu

VENV="${1:-.venv-mediapipe}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
RUNNER="$HERE/src/genyard/providers/local/mediapipe_runner.py"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" "$RUNNER" --check >/dev/null 2>&1; then
    exit 0
fi

if [ -z "${PYTHON:-}" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

echo "install-mediapipe: making $VENV (mediapipe 0.10.21, numpy<2) with $PYTHON" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "numpy>=1.26,<2" "protobuf>=4.25.3,<5" "Pillow>=10.3,<14"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "mediapipe==0.10.21"
"$VENV/bin/python" "$RUNNER" --check
