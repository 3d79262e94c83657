"""The embedded cluster, the schema and its constraints, against a real PostGIS."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import inspect, text
from sqlalchemy.exc import DataError, IntegrityError

from gridkit import db
from gridkit.config import Settings
from gridkit.db.embedded import EmbeddedCluster
from gridkit.errors import SetupError
from gridkit.models import (
    SRID,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)


def test_single_head_and_schema_at_head(engine):
    assert db.current_revision(engine) == db.head_revision()


def test_head_and_current_revision_read_as_alembic_reads_them(engine):
    """gridkit reads the head from the migration files and the revision from alembic_version without
    loading Alembic (every command checks them); Alembic's own answers must be the same."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config("postgresql://"))
    assert [db.head_revision()] == list(script.get_heads())
    assert {rev: set(parents) for rev, parents in db._revision_graph().items()} == {
        s.revision: set(s._all_down_revisions) for s in script.walk_revisions()
    }
    with engine.connect() as conn:
        assert db.revision_of(conn) == MigrationContext.configure(conn).get_current_revision()


def test_every_geometry_column_has_srid_4490_and_a_gist_index(engine):
    with engine.connect() as conn:
        cols = conn.execute(
            text("SELECT f_table_name, f_geometry_column, srid FROM geometry_columns WHERE f_table_schema = 'public'")
        ).all()
        assert len(cols) >= 8
        for table, column, srid in cols:
            assert srid == SRID, (table, column)
            has_gist = conn.execute(
                text(
                    # The column's own index (expression indexes over it, migration 20261206_scale8b, aside).
                    "SELECT count(*) FROM pg_indexes WHERE tablename = :t "
                    "AND indexdef ILIKE '%USING gist (' || :c || ')%'"
                ),
                {"t": table, "c": column},
            ).scalar()
            assert has_gist == 1, f"{table}.{column} has no GiST index"


def test_migration_round_trip(pg_server):
    pg_server.create_database("gridkit_roundtrip")
    url = pg_server.owner_url("gridkit_roundtrip")  # migrations run as the owner
    try:
        db.upgrade(url)
        eng = db.make_engine(url)
        tables = set(inspect(eng).get_table_names())
        assert {"admin_unit", "base_cell", "work_cell_member", "incident_history", "audit_log"} <= tables
        db.downgrade(url, "base")
        assert set(inspect(eng).get_table_names()) - {"spatial_ref_sys"} == {"alembic_version"}
        assert db.current_revision(eng) is None
        db.upgrade(url)
        assert set(inspect(eng).get_table_names()) == tables
        eng.dispose()
    finally:
        pg_server.drop_database("gridkit_roundtrip")


def _square(x, y, d=0.01):
    return from_shape(MultiPolygon([box(x, y, x + d, y + d)]), srid=SRID)


def _community(session, code="440304001001"):
    session.add_all(
        [
            AdminUnit(code="440304", name="福田区", level="district", geom=_square(114.0, 22.5, 0.1)),
            AdminUnit(
                code="440304001", name="园岭街道", level="street", parent_code="440304", geom=_square(114.0, 22.5, 0.05)
            ),
            AdminUnit(
                code=code, name="测试社区", level="community", parent_code="440304001", geom=_square(114.0, 22.5, 0.01)
            ),
        ]
    )
    session.flush()


@pytest.mark.parametrize(
    "code,level",
    [("44030", "district"), ("4403040011", "street"), ("44030400100a", "community"), ("440304001001", "street")],
)
def test_admin_unit_code_format_is_enforced(session, code, level):
    session.add(AdminUnit(code=code, name="x", level=level, geom=_square(114, 22.5)))
    with pytest.raises(IntegrityError, match="code_format"):
        session.flush()


def test_admin_unit_must_carry_parent_prefix(session):
    _community(session)
    session.add(
        AdminUnit(code="440305001002", name="x", level="community", parent_code="440304001", geom=_square(114, 22.5))
    )
    with pytest.raises(IntegrityError, match="code_prefix"):
        session.flush()


def test_invalid_geometry_is_refused(session):
    bowtie = Polygon([(114, 22.5), (114.01, 22.51), (114.01, 22.5), (114, 22.51)])
    session.add(
        AdminUnit(code="440304", name="x", level="district", geom=from_shape(MultiPolygon([bowtie]), srid=SRID))
    )
    with pytest.raises(IntegrityError, match="geom_valid"):
        session.flush()


def test_wrong_srid_is_refused(session):
    session.add(
        AdminUnit(
            code="440304", name="x", level="district", geom=from_shape(MultiPolygon([box(0, 0, 1, 1)]), srid=4326)
        )
    )
    with pytest.raises(Exception, match="SRID"):
        session.flush()


def test_base_cell_codes_unique_per_edition_and_prefixed(session):
    _community(session)
    ed = BaseGridEdition(name="2026")
    session.add(ed)
    session.flush()
    cell = from_shape(box(114, 22.5, 114.005, 22.505), srid=SRID)
    session.add(BaseCell(edition_id=ed.id, code="440304001001001", community_code="440304001001", geom=cell))
    session.flush()
    session.add(BaseCell(edition_id=ed.id, code="440304001001001", community_code="440304001001", geom=cell))
    with pytest.raises(IntegrityError, match="uq_base_cell_edition_id"):
        session.flush()


def test_base_cell_code_must_start_with_its_community(session):
    _community(session)
    ed = BaseGridEdition(name="2026")
    session.add(ed)
    session.flush()
    session.add(
        BaseCell(
            edition_id=ed.id,
            code="440304001002001",
            community_code="440304001001",
            geom=from_shape(box(114, 22.5, 114.005, 22.505), srid=SRID),
        )
    )
    with pytest.raises(IntegrityError, match="code_prefix"):
        session.flush()


def test_only_one_published_base_grid_edition(session):
    session.add_all([BaseGridEdition(name="a", status="published"), BaseGridEdition(name="b", status="published")])
    with pytest.raises(IntegrityError, match="one_published"):
        session.flush()


def test_one_work_cell_per_base_cell_per_version(session):
    _community(session)
    ed = BaseGridEdition(name="2026")
    session.add_all([ed, Department(code="100001", name="综治")])
    session.flush()
    bc = BaseCell(
        edition_id=ed.id,
        code="440304001001001",
        community_code="440304001001",
        geom=from_shape(box(114, 22.5, 114.005, 22.505), srid=SRID),
    )
    version = WorkGridVersion(dept_code="100001", number=1, base_edition_id=ed.id)
    session.add_all([bc, version])
    session.flush()
    w1 = WorkCell(version_id=version.id, code="10000144030400100101")
    w2 = WorkCell(version_id=version.id, code="10000144030400100102")
    session.add_all([w1, w2])
    session.flush()
    session.add(WorkCellMember(version_id=version.id, base_cell_id=bc.id, work_cell_id=w1.id))
    session.flush()
    session.add(WorkCellMember(version_id=version.id, base_cell_id=bc.id, work_cell_id=w2.id))
    with pytest.raises(IntegrityError):
        session.flush()


def test_work_cell_code_is_20_digits(session):
    ed = BaseGridEdition(name="2026")
    session.add_all([ed, Department(code="100001", name="综治")])
    session.flush()
    version = WorkGridVersion(dept_code="100001", number=1, base_edition_id=ed.id)
    session.add(version)
    session.flush()
    session.add(WorkCell(version_id=version.id, code="1000014403040010010"))
    with pytest.raises(IntegrityError, match="code_format"):
        session.flush()


def test_department_code_is_6_digits(session):
    session.add(Department(code="10001", name="综治"))
    with pytest.raises(IntegrityError, match="code_format"):
        session.flush()


def _public_tmpdir():
    # pytest's own tmp dirs are private to root; the server user must be able to reach the home.
    path = tempfile.mkdtemp(prefix="gk-home-")
    os.chmod(path, 0o755)
    return path


def test_embedded_cluster_up_status_down():
    home = _public_tmpdir()
    settings = Settings(home=home, pg_port=5498)
    cluster = db.cluster_for(settings)
    try:
        assert cluster.status().initialised is False
        done = db.up(settings)
        assert done["initialised"] and done["started"] and done["created"] and done["migrated"]
        status = cluster.status()
        assert status.running and status.pid
        again = db.up(settings)
        assert not any(again[k] for k in ("initialised", "started", "created", "migrated"))
        eng = db.make_engine(cluster.url())
        assert db.current_revision(eng) == db.head_revision()
        # Its WAL is for crash recovery only (backups are pg_dump): minimal, compressed, few checkpoints.
        names = ("wal_level", "max_wal_senders", "wal_compression", "max_wal_size", "checkpoint_timeout")
        with eng.connect() as conn:
            shown = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in names]
        assert shown == ["minimal", "0", "pglz", "4GB", "15min"]
        eng.dispose()
        assert cluster.stop() is True
        assert cluster.status().running is False
        assert cluster.stop() is False
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_home_the_server_user_cannot_reach_is_a_setup_error(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(SetupError, match="cannot be reached by the 'postgres' user"):
        EmbeddedCluster(private / "home").init()


def test_unwritable_home_is_a_setup_error(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file"
        target.write_text("not a directory")
        home = target / "home"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        home = locked / "home"
    with pytest.raises(SetupError, match="GRIDKIT_HOME=.* is not writable"):
        EmbeddedCluster(home).init()


def test_missing_postgres_programs_is_a_setup_error(tmp_path):
    with pytest.raises(SetupError, match="PostgreSQL 15 is not installed"):
        EmbeddedCluster(tmp_path, pg_bin=tmp_path / "nowhere").init()


def test_unreachable_database_url_is_a_setup_error(tmp_path):
    settings = Settings(home=tmp_path, database_url="postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(SetupError, match="cannot connect to GRIDKIT_DATABASE_URL") as info:
        db.up(settings)
    assert "secret" not in info.value.message


def test_error_messages_carry_no_bound_values(session):
    # A statement that fails (a bug, or a value the database refuses: the web logs it) must not put
    # a bound phone or name into the log or the traceback.
    session.execute(text("CREATE TEMP TABLE short_phone (phone varchar(5))"))
    with pytest.raises(DataError) as err, session.begin_nested():
        session.execute(text("INSERT INTO short_phone VALUES (:p)"), {"p": "13800138000"})
    assert "13800138000" not in str(err.value) and "value too long" in str(err.value)
