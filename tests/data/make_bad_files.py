"""Write the bad-input corpus under tests/data/bad/: tiny files near Shenzhen (114.05E 22.53N), a few features each.

Run `python tests/data/make_bad_files.py` to regenerate; the output is deterministic and committed.
Cells lie in community 440304001001 of tests/factories.make_admin_units (114.050–114.053E,
22.530–22.533N, cells of 0.001°); new communities 440304001002/003 lie just east of it.

| file | what is wrong | what gridkit does |
|---|---|---|
| bowtie_communities.geojson | community 440304001002 is a bowtie | repaired (2 triangles), noted, imported |
| spike_cell.geojson | a base cell ring with a zero-width spike | repaired to one polygon, noted, imported |
| no_crs/cells.shp | shapefile without .prj | refused (no_crs) unless a source CRS is given |
| gbk_no_cpg/communities.shp | GBK text and field names (编码, 名称), no .cpg | read as GB18030, imported right |
| wrong_code_field.geojson | the code is in field 网格编码, not "code" | refused (missing_field), fields listed |
| duplicate_codes.geojson | features 0 and 2 share a code | refused (duplicate_code) |
| overlapping_cells.geojson | features 0 and 1: one square, two codes | refused (duplicate_geometry) |
| overlapping_partial.geojson | two cells overlap by a third, different codes | imported: overlaps are for validation |
| empty.geojson | a FeatureCollection with no features | refused (no_features) |
| path_traversal.zip | members named ../evil.* | refused (unsafe_zip), nothing unpacked |
| symlink.zip | a member that is a symbolic link to /etc/passwd | refused (unsafe_zip) |
| damaged_member.zip | cells.dbf's compressed bytes are damaged | refused (bad_zip_member), member named |
| many_vertices.geojson | feature 1 (code …002) has 201 vertices | refused (too_many_vertices) with a limit of 200 |
| not_spatial.csv | a plain table | refused (no_geometry) |
| latlon_swapped.geojson | coordinates written latitude, longitude | refused (axes_swapped) |
| undecodable/cells.shp | bytes FF FE: neither UTF-8 nor GB18030; no .cpg | refused (undecodable_text) |
| outside_china.geojson | feature 1 lies in Paris | refused (outside_china), feature 1 named |
| null_geometry.geojson | feature 1 has geometry null | refused (null_geometry) |
| multipart_cell.geojson | feature 0 has two parts; 1 is a one-part MultiPolygon | refused (multipart) for 0 only |
| layers.gpkg | layers cells (Polygon Z), communities, attrs (no geometry) | several_layers; Z dropped |

The GBK shapefile read with a forced `encoding="utf-8"` is the "wrong forced encoding" case
(undecodable_text). Overlaps: two cells covering the same ground (≥ 95 % of the smaller) are
duplicates and refused at import; smaller overlaps with different codes import, and
`gridkit basegrid validate` reports them with their area and location.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
import zipfile
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from shapely.geometry import MultiPolygon, Polygon, box

OUT = Path(__file__).resolve().parent / "bad"

X0, Y0, D = 114.05, 22.53, 0.001
COMMUNITY = "440304001001"
CRS_4490 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
DBF_DATE = {"DBF_DATE_LAST_UPDATE": "2026-01-01"}
ZIP_DATE = (2026, 1, 1, 0, 0, 0)


def cell(col: int, row: int = 0) -> Polygon:
    """Return the square cell at column `col`, row `row` of community 440304001001."""
    return box(X0 + col * D, Y0 + row * D, X0 + (col + 1) * D, Y0 + (row + 1) * D)


def code(seq: int) -> str:
    """Return the base cell code of sequence `seq` in community 440304001001."""
    return f"{COMMUNITY}{seq:03d}"


def _coords(geom) -> list:
    return json.loads(json.dumps(geom.__geo_interface__))["coordinates"]


def feature(properties: dict, geometry) -> dict:
    """Return a GeoJSON feature; geometry may be a shapely geometry, a GeoJSON dict or None."""
    if geometry is not None and not isinstance(geometry, dict):
        geometry = {"type": geometry.geom_type, "coordinates": _coords(geometry)}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_geojson(path: Path, features: list[dict], *, crs: dict | None = CRS_4490) -> None:
    """Write a small GeoJSON FeatureCollection (with a crs member unless crs is None)."""
    document = {"type": "FeatureCollection"}
    if crs is not None:
        document["crs"] = crs
    document["features"] = features
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_shapefile(path: Path, frame: gpd.GeoDataFrame, *, encoding: str = "UTF-8",
                    keep: tuple[str, ...] = (".shp", ".shx", ".dbf", ".prj", ".cpg")) -> None:
    """Write a shapefile, then delete the sidecar files not in `keep` (e.g. the .prj or .cpg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, path, encoding=encoding, layer_options=DBF_DATE)
    for sidecar in path.parent.glob(path.stem + ".*"):
        if sidecar.suffix.lower() not in keep:
            sidecar.unlink()


def cells_frame(n: int = 2, crs=4490) -> gpd.GeoDataFrame:
    """Return n good cells in a row, with fields code and name."""
    return gpd.GeoDataFrame({"code": [code(i + 1) for i in range(n)], "name": [f"cell {i + 1}" for i in range(n)]},
                            geometry=[cell(i) for i in range(n)], crs=crs)


def write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    """Write a zip with fixed timestamps; a member given as ZipInfo keeps its attributes (e.g. symlink)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if isinstance(info, str):
                info = zipfile.ZipInfo(info, date_time=ZIP_DATE)
                info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def _damage_member(path: Path, name: str) -> None:
    """Overwrite the middle of member `name`'s compressed bytes, as a broken download or disk would."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = bytearray(path.read_bytes())
    # The local header is 30 bytes plus the name and extra field; the compressed data follows.
    name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    middle = start + info.compress_size // 2
    data[middle:middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def make(out: Path = OUT) -> list[Path]:
    """Write every file of the corpus into `out` (emptied first) and return the paths written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    gbk = _write_geometry_and_field_problems(out)
    _write_archives(out)
    _write_odd_files(out)
    _write_geopackage(out, gbk)
    return sorted(p for p in out.rglob("*") if p.is_file())


def _write_geometry_and_field_problems(out: Path) -> gpd.GeoDataFrame:
    """Repairable geometry, no CRS, GBK without .cpg, wrong field, duplicates, overlaps, empty; return the GBK frame."""
    # Invalid geometry that make_valid repairs: a bowtie community (→ two triangles) ...
    bowtie = Polygon([(114.053, 22.530), (114.056, 22.533), (114.056, 22.530), (114.053, 22.533)])
    write_geojson(out / "bowtie_communities.geojson", [
        feature({"code": "440304001002", "name": "蝴蝶社区"}, bowtie),
        feature({"code": "440304001003", "name": "方块社区"}, box(114.056, 22.530, 114.059, 22.533)),
    ])
    # ... and a base cell whose ring has a zero-width spike (→ one square).
    spike = Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, Y0 + D), (X0 + D, Y0 + 2 * D), (X0 + D, Y0 + D), (X0, Y0 + D)])
    write_geojson(out / "spike_cell.geojson", [
        feature({"code": code(1)}, spike), feature({"code": code(2)}, cell(1))])

    write_shapefile(out / "no_crs" / "cells.shp", cells_frame(), keep=(".shp", ".shx", ".dbf", ".cpg"))

    gbk = gpd.GeoDataFrame({"编码": ["440304001002", "440304001003"], "名称": ["园岭社区", "百花社区"]},
                           geometry=[MultiPolygon([box(114.053, 22.530, 114.056, 22.533)]),
                                     MultiPolygon([box(114.056, 22.530, 114.059, 22.533)])], crs=4490)
    write_shapefile(out / "gbk_no_cpg" / "communities.shp", gbk, encoding="GBK",
                    keep=(".shp", ".shx", ".dbf", ".prj"))

    write_geojson(out / "wrong_code_field.geojson", [
        feature({"网格编码": code(1), "名称": "网格一"}, cell(0)),
        feature({"网格编码": code(2), "名称": "网格二"}, cell(1))])

    write_geojson(out / "duplicate_codes.geojson", [
        feature({"code": code(1)}, cell(0)), feature({"code": code(2)}, cell(1)), feature({"code": code(1)}, cell(2))])

    write_geojson(out / "overlapping_cells.geojson", [
        feature({"code": code(1)}, cell(0)), feature({"code": code(2)}, cell(0)), feature({"code": code(3)}, cell(1))])
    write_geojson(out / "overlapping_partial.geojson", [
        feature({"code": code(1)}, cell(0)),
        feature({"code": code(2)}, box(X0 + D * 2 / 3, Y0, X0 + D * 5 / 3, Y0 + D))])

    write_geojson(out / "empty.geojson", [])
    return gbk


def _write_archives(out: Path) -> None:
    """Zip archives: path traversal, a symbolic link, a damaged member."""
    with tempfile.TemporaryDirectory() as tmp:
        write_shapefile(Path(tmp) / "evil.shp", cells_frame())
        evil = [(f"../evil{p.suffix}", p.read_bytes()) for p in sorted(Path(tmp).glob("evil.*"))]
    write_zip(out / "path_traversal.zip", evil)
    link = zipfile.ZipInfo("cells.shp", date_time=ZIP_DATE)
    link.external_attr = 0o120777 << 16  # S_IFLNK: a symbolic link whose target is the member's data
    write_zip(out / "symlink.zip", [(link, b"/etc/passwd")])

    with tempfile.TemporaryDirectory() as tmp:
        write_shapefile(Path(tmp) / "cells.shp", cells_frame())
        write_zip(out / "damaged_member.zip", [(p.name, p.read_bytes()) for p in sorted(Path(tmp).glob("cells.*"))])
    _damage_member(out / "damaged_member.zip", "cells.dbf")


def _write_odd_files(out: Path) -> None:
    """Many vertices, not spatial, lat/lon swapped, undecodable names, outside China, null geometry, multipart."""
    ring = [(X0 + D * 1 + D * k / 100, Y0) for k in range(100)] + \
        [(X0 + D * 2 - D * k / 100, Y0 + D) for k in range(100)]
    write_geojson(out / "many_vertices.geojson", [
        feature({"code": code(1)}, cell(0)), feature({"code": code(2)}, Polygon(ring))])

    (out / "not_spatial.csv").write_text(f"code,name\n{code(1)},cell 1\n{code(2)},cell 2\n", encoding="utf-8")

    swapped = [Polygon([(y, x) for x, y in cell(i).exterior.coords]) for i in range(3)]
    write_geojson(out / "latlon_swapped.geojson", [feature({"code": code(i + 1)}, g) for i, g in enumerate(swapped)],
                  crs=None)

    # Latin-1 writes each character as the byte of the same value: "\xff\xfe" is bytes FF FE.
    undecodable = cells_frame()
    undecodable["name"] = ["cell 1", "\xff\xfe bad"]
    write_shapefile(out / "undecodable" / "cells.shp", undecodable, encoding="latin1",
                    keep=(".shp", ".shx", ".dbf", ".prj"))

    write_geojson(out / "outside_china.geojson", [
        feature({"code": code(1)}, cell(0)), feature({"code": code(2)}, box(2.35, 48.85, 2.351, 48.851)),
        feature({"code": code(3)}, cell(2))])

    write_geojson(out / "null_geometry.geojson", [
        feature({"code": code(1)}, cell(0)), feature({"code": code(2)}, None)])

    write_geojson(out / "multipart_cell.geojson", [
        feature({"code": code(1)}, MultiPolygon([cell(0), cell(2)])),
        feature({"code": code(2)}, MultiPolygon([cell(1)]))])


def _write_geopackage(out: Path, gbk: gpd.GeoDataFrame) -> None:
    """A GeoPackage with a cells layer (Z values), a communities layer and a table without geometry."""
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2026-01-01T00:00:00Z"})
    try:
        gpkg = out / "layers.gpkg"
        # Z = 5 m on every vertex, as CAD and survey exports often have.
        cells_z = gpd.GeoDataFrame({"code": [code(1), code(2)]},
                                   geometry=[Polygon([(x, y, 5.0) for x, y in cell(i).exterior.coords])
                                             for i in range(2)], crs=4490)
        small = {"SPATIAL_INDEX": "NO"}
        pyogrio.write_dataframe(cells_z, gpkg, layer="cells", layer_options=small)
        pyogrio.write_dataframe(gbk.rename(columns={"编码": "code", "名称": "name"}), gpkg, layer="communities",
                                layer_options=small)
        pyogrio.write_dataframe(pd.DataFrame({"code": [code(1)], "note": ["no geometry"]}), gpkg, layer="attrs")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    # Small pages keep the committed file at ~20 kB instead of ~80 kB; GeoPackage does not care.
    with closing(sqlite3.connect(gpkg)) as db:
        db.execute("PRAGMA page_size = 512")
        db.execute("VACUUM")


if __name__ == "__main__":
    written = make(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    for path in written:
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"{path.stat().st_size:7d}  {shown}")
