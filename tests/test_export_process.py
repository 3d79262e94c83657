"""Large exports: GDAL writes in a child process while this one reads PostGIS (gridkit.io.export_child).

The threshold is set to 0 here so that the test city's few rows take the same path as a million.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyogrio
import pytest
from factories_exports import make_city
from sqlalchemy import text

from gridkit.errors import ValidationError
from gridkit.io import export, export_arrow, export_follow
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.export_child import WriterProcess
from gridkit.io.export_follow import Follower, crc32_combine
from gridkit.io.export_zip import write_zip
from gridkit.models import Resident, User


@pytest.fixture
def city(session, monkeypatch):
    monkeypatch.setattr(export, "PROCESS_ROWS", 0)
    return make_city(session)


def test_shapefile_and_gpkg_written_by_the_child(session, city, tmp_path):
    path = tmp_path / "residents.zip"
    summary = export_layer(session, ExportOptions("residents", "shp", path, chunk_size=5))
    assert summary["features"] == city["residents"]
    with zipfile.ZipFile(path) as zf:
        assert {"residents.shp", "residents.dbf", "residents.cpg", "fields.csv"} <= set(zf.namelist())
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/residents.shp")
    assert len(frame) == city["residents"] and frame["name"].notna().all()
    # Several layers through one child: components are points and lines.
    gpkg = tmp_path / "components.gpkg"
    summary = export_layer(session, ExportOptions("components", "gpkg", gpkg))
    assert dict(pyogrio.list_layers(gpkg)) == {"components_point": "Point", "components_line": "MultiLineString"}
    assert summary["layers"] == {"components_point": 1, "components_line": 1}
    assert not list(tmp_path.glob(".*")) and not list(tmp_path.glob("gridkit-shp-*"))


def test_failure_while_reading_kills_the_child_and_leaves_no_file(session, city, tmp_path):
    session.execute(Resident.__table__.update().values(name="𠮷田"))  # GBK cannot hold it
    with pytest.raises(ValidationError) as err:
        export_layer(
            session,
            ExportOptions("residents", "shp", tmp_path / "r.zip", encoding="gbk", unmasked=True, chunk_size=5),
            user=User(name="root2", role="admin"),
        )
    assert err.value.code == "export.not_encodable"

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_layer(session, ExportOptions("residents", "gpkg", tmp_path / "r.gpkg", chunk_size=5), progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_a_gdal_error_in_the_child_is_a_write_failure(tmp_path):
    target = tmp_path / "x.gpkg"
    process = WriterProcess(target, cleanup=[target])
    schema = pa.schema([pa.field("n", pa.int64()), pa.field("geometry", pa.binary())])
    batch = pa.RecordBatch.from_arrays([pa.array([1]), pa.array([b"not wkb"])], schema=schema)
    header = {"path": str(target), "layer": "x", "driver": "NoSuchDriver", "geometry_type": "Point", "crs": "EPSG:4490"}
    with pytest.raises(ValidationError) as err:
        process.write_layer(header, schema, iter([batch]))
    assert err.value.code == "export.write_failed" and "NoSuchDriver" in err.value.message
    assert process.proc.poll() is not None and not target.exists()


def _point_batches(schema, count: int, rows: int = 20_000):
    wkb = pa.array([bytes.fromhex("01010000000000000000805c400000000000803640")] * rows, type=pa.binary())
    for i in range(count):
        yield pa.RecordBatch.from_arrays([pa.array(range(i * rows, (i + 1) * rows)), wkb], schema=schema)


@pytest.mark.parametrize("failure", ["child killed", "interrupted"])
def test_a_stream_cut_while_batches_wait_for_the_pipe_ends_the_sender(tmp_path, failure):
    # Batches are written to the pipe by a thread of their own: whether the child dies or the
    # reading side fails while several batches are in flight, the call ends and leaves no thread.
    target = tmp_path / "x.gpkg"
    before = threading.active_count()
    process = WriterProcess(target, cleanup=[target])
    schema = pa.schema(
        [pa.field("n", pa.int64()), pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "ogc.wkb"})]
    )
    header = {"path": str(target), "layer": "x", "driver": "GPKG", "geometry_type": "Point", "crs": "EPSG:4490"}

    def batches():
        for i, batch in enumerate(_point_batches(schema, 200)):
            if i == 20:
                if failure == "child killed":
                    os.kill(process.proc.pid, signal.SIGKILL)
                else:
                    raise KeyboardInterrupt
            yield batch

    expected = ValidationError if failure == "child killed" else KeyboardInterrupt
    with pytest.raises(expected) as err:
        process.write_layer(header, schema, batches())
    if failure == "child killed":
        assert err.value.code == "export.write_failed"
    assert process.proc.poll() is not None
    assert threading.active_count() == before


def test_line_breaks_quotes_and_commas_in_values_survive(session, city, tmp_path):
    # Values travel in binary COPY rows: line breaks, quotes, commas and empty texts come back
    # exactly as stored.
    tricky = ["二楼\n302室", 'say "hi", 你好', "末尾\r\n", ""]
    ids = session.execute(text("SELECT id FROM legal_entity ORDER BY id")).scalars().all()
    assert len(ids) >= len(tricky)
    for entity_id, address in zip(ids, tricky):
        session.execute(text("UPDATE legal_entity SET address = :a WHERE id = :i"), {"a": address, "i": entity_id})
    expected = dict(session.execute(text("SELECT credit_code, address FROM legal_entity")).all())
    path = tmp_path / "entities.gpkg"
    export_layer(session, ExportOptions("entities", "gpkg", path, chunk_size=1))
    frame = pyogrio.read_dataframe(path)
    assert dict(zip(frame["credit_code"], frame["address"].fillna(""))) == {k: v or "" for k, v in expected.items()}


def test_rows_cut_into_a_small_first_block_and_larger_ones_all_arrive(session, city, tmp_path, monkeypatch):
    # The first block is small so the writer starts early; every row still arrives once, in order.
    monkeypatch.setattr(export_arrow, "FIRST_BLOCK_BYTES", 100)
    monkeypatch.setattr(export_arrow, "BLOCK_BYTES", 700)
    cell = session.execute(text("SELECT id FROM base_cell ORDER BY code LIMIT 1")).scalar_one()
    session.execute(
        text(
            "INSERT INTO legal_entity (credit_code, name, address, geom, base_cell_id) "
            "SELECT '9144' || lpad(g::text, 14, '0'), '园岭' || g, '街道', "
            "ST_SetSRID(ST_MakePoint(114.05, 22.55), 4490), :c FROM generate_series(1, 300) g"
        ),
        {"c": cell},
    )
    expected = session.execute(text("SELECT credit_code FROM legal_entity")).scalars().all()
    path = tmp_path / "entities.gpkg"
    export_layer(session, ExportOptions("entities", "gpkg", path, chunk_size=7))
    frame = pyogrio.read_dataframe(path)
    assert sorted(frame["credit_code"]) == sorted(expected) and len(expected) > 300


def test_zip_written_in_pieces_reads_back(tmp_path):
    big = tmp_path / "x.dbf"
    big.write_bytes(bytes(range(256)) * 3000 + b" " * 1_000_003)
    empty = tmp_path / "x.shp"
    empty.write_bytes(b"")
    named = tmp_path / "字段.csv"
    named.write_text("字段,field\n", encoding="utf-8")
    target = tmp_path / "out.zip"
    write_zip(target, [(big, "x.dbf"), (empty, "x.shp"), (named, "字段.csv")], piece_bytes=65_536)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None and zf.namelist() == ["x.dbf", "x.shp", "字段.csv"]
        assert zf.read("x.dbf") == big.read_bytes() and zf.read("x.shp") == b""
        assert zf.read("字段.csv").decode() == "字段,field\n"
    assert zipfile.ZipFile(target).getinfo("x.dbf").compress_size < big.stat().st_size / 2


def _grow(path, records, header=b"H" * 100, record_bytes=4096):
    """Write `header` then append `records` records, slowly enough for a follower to read some."""
    with open(path, "wb") as fh:
        fh.write(header)
        for i in range(records):
            fh.write(bytes([i % 251]) * 7 + f"{i:08d}".encode() * ((record_bytes - 7) // 8) + b" " * 1)
            fh.flush()
            if i % 64 == 0:
                time.sleep(0.002)


def _caught_up(paths, seconds=30.0):
    """Wait until the follower has deflated what it may of `paths`: their spools stopped growing."""
    deadline, sizes = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        spools = [p.with_name(p.name + ".deflated") for p in paths]
        now = [s.stat().st_size if s.exists() else 0 for s in spools]
        if all(now) and now == sizes:
            return
        sizes = now
        time.sleep(0.3)


def test_zip_of_files_deflated_while_written_reads_back(tmp_path, monkeypatch):
    monkeypatch.setattr(export_follow, "NICE", 0)  # a busy test machine must not starve it
    shp, dbf = tmp_path / "x.shp", tmp_path / "x.dbf"
    follower = Follower([(shp, "shp"), (dbf, "dbf")], piece_bytes=65_536, margin=4096)
    _grow(shp, 600)
    # A .dbf states its header size in bytes 8-9; its first bytes are rewritten at the close.
    _grow(dbf, 600, header=b"\x03\x7e\x0c\x04\x00\x00\x00\x00" + (40).to_bytes(2, "little") + b"\x00" * 30)
    _caught_up([shp, dbf])
    ahead = {f.path: f for f in follower.stop()}
    assert ahead[shp].usable and ahead[dbf].usable and ahead[dbf].start == 40  # followed, not just zipped
    with open(dbf, "r+b") as fh:
        fh.seek(4)
        fh.write((600).to_bytes(4, "little"))  # the record count, as GDAL writes it at the close
    with open(shp, "ab") as fh:
        fh.write(b"tail")
    target = tmp_path / "out.zip"
    write_zip(target, [(shp, "x.shp", ahead[shp]), (dbf, "x.dbf", ahead[dbf])], piece_bytes=65_536)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        assert zf.read("x.shp") == shp.read_bytes() and zf.read("x.dbf") == dbf.read_bytes()


def test_a_followed_file_rewritten_in_the_middle_is_deflated_again(tmp_path, monkeypatch):
    monkeypatch.setattr(export_follow, "NICE", 0)
    dbf = tmp_path / "x.dbf"
    follower = Follower([(dbf, "shp")], piece_bytes=65_536, margin=4096)
    _grow(dbf, 600)
    _caught_up([dbf])
    (followed,) = follower.stop()
    assert followed.usable and followed.end > 200_007
    with open(dbf, "r+b") as fh:  # a record already deflated changes (say a field widened)
        fh.seek(200_000)
        fh.write(b"CHANGED")
    assert crc32_combine(zlib.crc32(b"abc"), zlib.crc32(b"defg"), 4) == zlib.crc32(b"abcdefg")
    target = tmp_path / "out.zip"
    write_zip(target, [(dbf, "x.dbf", followed)], piece_bytes=65_536)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None and zf.read("x.dbf") == dbf.read_bytes()


def test_a_large_shapefile_deflated_while_the_child_writes_it(session, city, tmp_path, monkeypatch):
    monkeypatch.setattr(export_follow, "PIECE_BYTES", 65_536)
    monkeypatch.setattr(export_follow, "MARGIN", 4096)
    monkeypatch.setattr(export_follow, "NICE", 0)  # a busy test machine must not starve it
    followed = []
    stop = export_follow.Follower.stop

    def stop_once_the_dbf_is_followed(self):
        # On a loaded machine the child may finish writing before the follower has started: give it time to
        # deflate a first piece of the .dbf (its spool holds it, its report follows) before stopping it.
        spool = next(Path(f"{path}.deflated") for path, kind in self.files if kind == "dbf")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (spool.exists() and spool.stat().st_size > 0):
            time.sleep(0.05)
        time.sleep(0.5)
        return followed.extend(stop(self)) or followed

    monkeypatch.setattr(export_follow.Follower, "stop", stop_once_the_dbf_is_followed)
    cell = session.execute(text("SELECT id FROM base_cell ORDER BY code LIMIT 1")).scalar_one()
    session.execute(
        text(
            "INSERT INTO legal_entity (credit_code, name, address, geom, base_cell_id) "
            "SELECT '9144' || lpad(g::text, 14, '0'), '园岭' || g || '号科技有限公司', '园岭街道' || g || '号', "
            "ST_SetSRID(ST_MakePoint(114.05 + g * 1e-7, 22.55), 4490), :c FROM generate_series(1, 40000) g"
        ),
        {"c": cell},
    )
    path = tmp_path / "entities.zip"
    summary = export_layer(session, ExportOptions("entities", "shp", path))
    assert summary["features"] == city["entities"] + 40000
    assert any(f.usable and f.path.suffix == ".dbf" for f in followed)  # the .dbf was deflated ahead
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/entities.shp")
    assert len(frame) == summary["features"] and "园岭40000号科技有限公司" in set(frame["name"])


@pytest.mark.parametrize("process_rows", [0, 10**9], ids=["child", "in-process"])
def test_shapefile_bytes_are_what_gdal_writes_by_default(session, city, tmp_path, monkeypatch, process_rows):
    # GDAL is asked not to write the .dbf's end byte (0x1A) after each record; the writer appends it
    # once: the files must be exactly those of a plain GDAL write of the same rows.
    monkeypatch.setattr(export, "PROCESS_ROWS", process_rows)
    path = tmp_path / "entities.zip"
    export_layer(session, ExportOptions("entities", "shp", path))
    _meta, table = pyogrio.read_arrow(f"/vsizip/{path}/entities.shp")
    assert table.num_rows == city["entities"] > 0
    schema = table.schema.set(
        table.schema.get_field_index("wkb_geometry"),
        pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "ogc.wkb"}),
    )
    plain = tmp_path / "plain" / "entities.shp"
    plain.parent.mkdir()
    pyogrio.write_arrow(
        table.rename_columns(schema.names).cast(schema),
        str(plain),
        driver="ESRI Shapefile",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4490",
        encoding="UTF-8",
    )
    with zipfile.ZipFile(path) as zf:
        assert zf.read("entities.dbf").endswith(b"\x1a")
        for suffix in (".shp", ".shx", ".dbf"):
            assert zf.read(f"entities{suffix}") == plain.with_suffix(suffix).read_bytes(), suffix


def test_gdal_options_sent_with_a_layer_apply_to_the_childs_write(tmp_path):
    # The header's `config` (GDAL configuration options: the GeoPackage's SQLite cache) is set in
    # the child before it writes; OGR_CURRENT_DATE shows in the file.
    target = tmp_path / "x.gpkg"
    process = WriterProcess(target, cleanup=[target])
    schema = pa.schema(
        [pa.field("n", pa.int64()), pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "ogc.wkb"})]
    )
    header = {
        "path": str(target),
        "layer": "x",
        "driver": "GPKG",
        "geometry_type": "Point",
        "crs": "EPSG:4490",
        "config": {"OGR_CURRENT_DATE": "2001-02-03T04:05:06.000Z", "OGR_SQLITE_CACHE": "1"},
    }
    process.write_layer(header, schema, _point_batches(schema, 2))
    process.finish()
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT last_change FROM gpkg_contents WHERE table_name = 'x'").fetchall() == [
            ("2001-02-03T04:05:06.000Z",)
        ]
        assert db.execute("SELECT count(*) FROM x").fetchone() == (40_000,)


def test_gpkg_written_by_the_child_is_whole(session, city, tmp_path):
    # What GDAL checks in a GeoPackage: every feature, its CRS, an R-tree holding each point's box.
    path = tmp_path / "entities.gpkg"
    summary = export_layer(session, ExportOptions("entities", "gpkg", path))
    info = pyogrio.read_info(path)
    assert info["features"] == summary["features"] == city["entities"] > 0 and info["crs"] == "EPSG:4490"
    points = dict(session.execute(text("SELECT credit_code, ARRAY[ST_X(geom), ST_Y(geom)] FROM legal_entity")).all())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert ("entities", "geom", "gpkg_rtree_index") in db.execute(
            "SELECT table_name, column_name, extension_name FROM gpkg_extensions"
        ).fetchall()
        boxes = db.execute(
            "SELECT e.credit_code, r.minx, r.maxx, r.miny, r.maxy "
            "FROM entities e JOIN rtree_entities_geom r ON r.id = e.fid"
        ).fetchall()
    assert len(boxes) == len(points)
    for code, minx, maxx, miny, maxy in boxes:
        x, y = points[code]
        assert minx <= x <= maxx and miny <= y <= maxy and maxx - minx < 1e-4
