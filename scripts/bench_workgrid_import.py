"""Benchmark: `gridkit workgrid import` of hundreds of hand-drawn work cells over a city of ~10,000 base cells.

A department's shapefile in EPSG:4547 (GBK names, no .cpg), one polygon per 5 × 5 block of base cells, each
vertex a few metres off the cells' edges, is imported into a draft. Baseline from the same run: what a planner
did before, one `gridkit workgrid assign --polygon` per work cell (cells_in_polygon + set_members each). Both
are run in savepoints rolled back; the membership they make is compared (no cell is split in this file, so
both must agree).

Runs in a throwaway private cluster under /tmp (or GRIDKIT_DATABASE_URL's database, inside a transaction that
is rolled back). Usage: .venv/bin/python scripts/bench_workgrid_import.py [--communities 12] [--port 5495]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pyproj  # noqa: E402
import shapely  # noqa: E402
from shapely.geometry import Polygon, box  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.grids import work  # noqa: E402
from gridkit.grids.work.import_polygons import import_work_cells  # noqa: E402
from gridkit.io.vector import read_vector  # noqa: E402

X0, Y0, CELL = 114.05, 22.53, 0.001  # ~100 m cells in Shenzhen (EPSG:4547's zone)
ROWS, COLS, BLOCK = 90, 10, 5  # per community: 900 base cells, 36 work cells
DEPT, STREET = "100001", "440304001"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(session: Session, communities: int) -> None:
    """Admin units and `communities` communities of ROWS × COLS base cells side by side; the department."""
    span_x, span_y = communities * COLS * CELL, ROWS * CELL
    outline = f"ST_Multi(ST_MakeEnvelope({X0}, {Y0}, {X0 + span_x}, {Y0 + span_y}, 4490))"
    session.execute(
        text(
            "INSERT INTO admin_unit (code, name, level, parent_code, geom) VALUES "
            f"('440300', '深圳市', 'city', NULL, {outline}), ('440304', '福田区', 'district', '440300', {outline}), "
            f"('{STREET}', '园岭街道', 'street', '440304', {outline})"
        )
    )
    session.execute(
        text(
            "INSERT INTO admin_unit (code, name, level, parent_code, geom) "
            f"SELECT '{STREET}' || lpad((c + 1)::text, 3, '0'), '社区' || (c + 1), 'community', '{STREET}', "
            f"ST_Multi(ST_MakeEnvelope({X0} + c * {COLS * CELL}, {Y0}, {X0} + (c + 1) * {COLS * CELL}, "
            f"{Y0 + span_y}, 4490)) FROM generate_series(0, {communities - 1}) c"
        )
    )
    session.execute(
        text("INSERT INTO base_grid_edition (name, status, published_at) VALUES ('bench', 'published', now())")
    )
    session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) "
            f"SELECT (SELECT max(id) FROM base_grid_edition), '{STREET}' || lpad((c + 1)::text, 3, '0') "
            f"|| lpad((({ROWS - 1} - j) * {COLS} + i + 1)::text, 3, '0'), '{STREET}' || lpad((c + 1)::text, 3, '0'), "
            f"ST_MakeEnvelope({X0} + (c * {COLS} + i) * {CELL}, {Y0} + j * {CELL}, "
            f"{X0} + (c * {COLS} + i + 1) * {CELL}, {Y0} + (j + 1) * {CELL}, 4490) "
            f"FROM generate_series(0, {communities - 1}) c, generate_series(0, {COLS - 1}) i, "
            f"generate_series(0, {ROWS - 1}) j"
        )
    )
    work.add_department(session, DEPT, "综治中心", jurisdiction="440304")


def drawn_file(folder: Path, communities: int) -> tuple[Path, dict[str, set]]:
    """Write the department's shapefile and return it with {work cell code: its planned base cells}."""
    to_4547 = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)
    rng = np.random.default_rng(1)
    codes, names, geoms = [], [], []
    for c in range(communities):
        n = 0
        for j in range(0, ROWS, BLOCK):
            for i in range(0, COLS, BLOCK):
                n += 1
                x = X0 + (c * COLS + i) * CELL
                block = box(x, Y0 + j * CELL, x + BLOCK * CELL, Y0 + (j + BLOCK) * CELL)
                projected = shapely.transform(block, lambda xy: np.column_stack(to_4547.transform(*xy.T)))
                ring = np.asarray(shapely.segmentize(projected, 20).exterior.coords)[:-1]
                geoms.append(Polygon(ring + rng.uniform(-4, 4, ring.shape)))
                codes.append(f"{DEPT}{STREET}{c + 1:03d}{n:02d}")
                names.append(f"第{n}网格")
    path = folder / "网格.shp"
    gpd.GeoDataFrame({"WGBM": codes, "WGMC": names}, geometry=geoms, crs=4547).to_file(
        path, engine="pyogrio", encoding="GBK"
    )
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path, codes


def membership(session: Session, version_id: int) -> dict[str, str]:
    return dict(
        session.execute(
            text(
                "SELECT b.code, w.code FROM work_cell_member m JOIN base_cell b ON b.id = m.base_cell_id "
                "JOIN work_cell w ON w.id = m.work_cell_id WHERE m.version_id = :v"
            ),
            {"v": version_id},
        ).all()
    )


def one_by_one(session: Session, version, path: Path, codes: list[str]) -> dict[str, str]:
    """The baseline: per work cell, its polygon read and `assign --polygon`'s two calls."""
    frame = read_vector(path, multipart="keep").gdf
    for code, geom in zip(codes, frame.geometry):
        cells = work.cells_in_polygon(session, version, geom)
        work.set_members(session, version, code, cells, by="bench")
    return membership(session, version.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--communities", type=int, default=12, help="communities of 900 base cells (default 12)")
    parser.add_argument("--port", type=int, default=5495)
    args = parser.parse_args()
    with db.bench_database(args.port) as (url, where), tempfile.TemporaryDirectory() as tmp:
        log(f"database: {where}")
        engine = db.make_engine(url)
        try:
            with Session(engine) as session:
                session.begin()
                build(session, args.communities)
                version = work.start_draft(session, DEPT, by="bench")
                path, codes = drawn_file(Path(tmp), args.communities)
                log(f"{args.communities * ROWS * COLS:,} base cells, {len(codes)} drawn work cells")
                rows = []
                for label, run in (
                    ("one assign --polygon per work cell (before)", lambda: one_by_one(session, version, path, codes)),
                    ("workgrid import", lambda: _imported(session, version, path)),
                ):
                    nested = session.begin_nested()
                    t0 = time.perf_counter()
                    made = run()
                    rows.append((label, time.perf_counter() - t0, made))
                    nested.rollback()
                session.rollback()
        finally:
            engine.dispose()
    (before_label, before, made_before), (label, seconds, made) = rows
    print()
    print(f"{'benchmark':46} {'seconds':>9} {'speed-up':>9}")
    print(f"{before_label:46} {before:9.2f} {1:8.1f}×")
    print(f"{label:46} {seconds:9.2f} {before / seconds:8.1f}×")
    print(f"same membership: {made == made_before} ({len(made):,} base cells placed)")


def _imported(session: Session, version, path: Path) -> dict[str, str]:
    import_work_cells(session, version, path, code_field="WGBM", name_field="WGMC")
    return membership(session, version.id)


if __name__ == "__main__":
    main()
