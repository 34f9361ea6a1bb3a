#!/usr/bin/env bash
# Install mmrphys with its test extras (CPU torch) and run the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0 2>/dev/null || python3 -m pip install -q "torch>=2.1"
python3 -m pip install -q -e ".[test]"
python3 -m ruff check src tests benchmarks
python3 -m pytest -q -p no:cacheprovider "$@"
