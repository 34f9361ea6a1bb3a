#!/usr/bin/env bash
# Install mmrphys (CPU torch) and run the main job on a generated clip with known truth.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0 2>/dev/null || python3 -m pip install -q "torch>=2.1"
python3 -m pip install -q -e .
mmrphys demo --out demo_output "$@"
