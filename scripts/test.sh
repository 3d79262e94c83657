#!/usr/bin/env bash
# Command 2: set up, lint and format-check (ruff), and run the whole test suite against a real PostGIS and a real Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
echo "ruff check . && ruff format --check ."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
