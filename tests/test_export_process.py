"""Large exports: GDAL writes in a child process while this one reads PostGIS (gridkit.io.export_child).

The threshold is set to 0 here so that the test city's few rows take the same path as a million.
"""

from __future__ import annotations

import zipfile

import pyarrow as pa
import pyogrio
import pytest
from factories_exports import make_city

from gridkit.errors import ValidationError
from gridkit.io import export
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.export_child import WriterProcess
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
