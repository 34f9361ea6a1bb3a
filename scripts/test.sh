#!/usr/bin/env bash
# Install mmrphys with its test extras (CPU torch), install the web app's npm packages when Node is
# present (the built page is committed in src/mmrphys/web/static/; a test rebuilds it into a temporary
# folder and checks the committed one is up to date), and run the default test suite. Extra arguments
# go to pytest (e.g. `bash scripts/test.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0 2>/dev/null || python3 -m pip install -q "torch>=2.1"
python3 -m pip install -q -e ".[test]"
if command -v npm >/dev/null 2>&1; then
  (cd webapp && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: the check that the committed web page is up to date will skip" >&2
fi
python3 -m ruff check src tests benchmarks
python3 -m pytest -q "$@"
