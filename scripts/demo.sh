#!/usr/bin/env bash
# Command 1: set up, load the demo city into the embedded database and serve it on http://127.0.0.1:5000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
if [ ! -e data/boundaries/base_cells.geojson ]; then
  .venv/bin/python scripts/make_demo_data.py
fi
exec .venv/bin/gridkit demo "$@"
