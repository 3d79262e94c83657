"""Small functions that make readable test data: hand-sized grids near Shenzhen (EPSG:4490)."""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition

# South-west corner of the test area and the cell size in degrees (~100 m at 22.5°N).
X0, Y0, D = 114.05, 22.53, 0.001

PUBLISHED_AT = datetime(2020, 1, 1, tzinfo=UTC)
CITY, DISTRICT, STREET = "440300", "440304", "440304001"


def make_admin_units(session: Session, *, communities: int = 1, rows: int = 3, cols: int = 3) -> list[AdminUnit]:
    """Make city › district › street › `communities` communities side by side (west→east).

    Each community is rows×cols cells of D degrees. Returns the communities.
    """
    width = cols * D
    outline = box(X0, Y0, X0 + communities * width, Y0 + rows * D)
    session.add_all(
        [
            AdminUnit(code=CITY, name="深圳市", level="city", geom=from_shape(MultiPolygon([outline]), srid=SRID)),
            AdminUnit(
                code=DISTRICT,
                name="福田区",
                level="district",
                parent_code=CITY,
                geom=from_shape(MultiPolygon([outline]), srid=SRID),
            ),
            AdminUnit(
                code=STREET,
                name="园岭街道",
                level="street",
                parent_code=DISTRICT,
                geom=from_shape(MultiPolygon([outline]), srid=SRID),
            ),
        ]
    )
    result = []
    for i in range(communities):
        geom = box(X0 + i * width, Y0, X0 + (i + 1) * width, Y0 + rows * D)
        unit = AdminUnit(
            code=f"{STREET}{i + 1:03d}",
            name=f"测试{i + 1}社区",
            level="community",
            parent_code=STREET,
            geom=from_shape(MultiPolygon([geom]), srid=SRID),
        )
        session.add(unit)
        result.append(unit)
    session.flush()
    return result


def make_base_grid(
    session: Session,
    rows: int = 3,
    cols: int = 3,
    *,
    communities: int = 1,
    edition: str = "2026",
    status: str = "published",
) -> BaseGridEdition:
    """Make admin units and a base grid edition of rows×cols square cells per community.

    Cells are numbered per the default rule: north→south rows, west→east inside a row.
    """
    units = make_admin_units(session, communities=communities, rows=rows, cols=cols)
    ed = BaseGridEdition(name=edition, status=status, published_at=PUBLISHED_AT if status != "draft" else None)
    session.add(ed)
    session.flush()
    for i, unit in enumerate(units):
        seq = 0
        for r in reversed(range(rows)):  # north first
            for c in range(cols):  # then west→east
                seq += 1
                x = X0 + i * cols * D + c * D
                y = Y0 + r * D
                session.add(
                    BaseCell(
                        edition_id=ed.id,
                        code=f"{unit.code}{seq:03d}",
                        community_code=unit.code,
                        geom=from_shape(box(x, y, x + D, y + D), srid=SRID),
                    )
                )
    session.flush()
    return ed


# The i-th of n points spread over the 3×3 grid of make_base_grid and a little beyond: some on edges and corners,
# some outside every cell.
_SPREAD_POINT = "ST_SetSRID(ST_MakePoint(:x + (i % 17) * :d * 3.2 / 16, :y + (i / 17 % 19) * :d * 3.2 / 18), 4490)"
_SPREAD = {"x": X0 - 0.1 * D, "y": Y0 - 0.1 * D, "d": D}


def store_entities(session: Session, n: int) -> None:
    """Store `n` legal entities over the 3×3 grid of make_base_grid: some on edges and corners, some outside."""
    session.execute(
        text(
            "INSERT INTO legal_entity (credit_code, name, geom) "
            "SELECT '91440300' || lpad(i::text, 10, '0'), 'e' || i, "
            f"{_SPREAD_POINT} "
            "FROM generate_series(1, :n) i"
        ),
        {**_SPREAD, "n": n},
    )


def entities_not_in_their_cell(session: Session) -> int:
    """Entities whose stored cell is not PostGIS's (ST_Covers, smallest code on ties)."""
    return session.scalar(
        text(
            "SELECT count(*) FROM legal_entity e WHERE e.base_cell_id IS DISTINCT FROM (SELECT b.id FROM base_cell b "
            "WHERE ST_Covers(b.geom, e.geom) ORDER BY b.code LIMIT 1)"
        )
    )


def store_residents(session: Session, n: int) -> None:
    """Store `n` residents with points over the 3×3 grid of make_base_grid (as store_entities: some on edges and
    corners, some outside) and no cell."""
    session.execute(
        text(
            "INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type, geom) "
            "SELECT md5(i::text), '4403**********0000', '测试', 'H' || (i / 3), 'registered', "
            f"{_SPREAD_POINT} "
            "FROM generate_series(1, :n) i"
        ),
        {**_SPREAD, "n": n},
    )


def residents_not_in_their_cell(session: Session) -> int:
    """Residents whose stored cell (a row of resident_cell, or none) is not PostGIS's (ST_Covers, smallest code on
    ties)."""
    return session.scalar(
        text(
            "SELECT count(*) FROM resident r LEFT JOIN resident_cell c ON c.resident_id = r.id "
            "WHERE c.base_cell_id IS DISTINCT FROM (SELECT b.id FROM base_cell b "
            "WHERE ST_Covers(b.geom, r.geom) ORDER BY b.code LIMIT 1)"
        )
    )
