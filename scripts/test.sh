#!/usr/bin/env bash
# Command 2: set up, lint and format-check (ruff), and run the whole test suite against a real PostGIS and a real Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
echo "ruff check . && ruff format --check ."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# One worker per core (at most 4), each with its own throwaway PostgreSQL; a test file runs whole in one
# worker (its module fixtures are built once). Against one external server (GRIDKIT_TEST_DATABASE_URL) the
# workers' databases would share names: one process then. Pass -n 0 to run in this process alone.
workers=(-n auto --maxprocesses 4 --dist loadfile)
[ -n "${GRIDKIT_TEST_DATABASE_URL:-}" ] && workers=(-n 0)
exec .venv/bin/python -m pytest -p no:cacheprovider "${workers[@]}" "$@"
