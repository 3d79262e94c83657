"""Test data for the work grid rules: two streets of one district, base cells coded in a chosen profile."""

from __future__ import annotations

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy.orm import Session

from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import SRID, EditionState
from gridkit.standard.codes import CodeProfile, base_cell_code
from tests.factories import CITY, DISTRICT, PUBLISHED_AT, X0, Y0, D

# Two streets side by side (west, east), one community each, 2×2 base cells per community.
STREETS = ("440304001", "440304002")
COMMUNITIES = ("440304001001", "440304002001")
SIDE = 2


def _unit(code: str, name: str, level: str, parent: str | None, outline) -> AdminUnit:
    return AdminUnit(
        code=code, name=name, level=level, parent_code=parent, geom=from_shape(MultiPolygon([outline]), srid=SRID)
    )


def make_two_street_grid(session: Session, profile: CodeProfile) -> BaseGridEdition:
    """Make city › district › 2 streets › 1 community each, and a published edition coded in `profile`.

    Cells are numbered north→south, west→east in each community: community i's cell k is
    base_cell_code(COMMUNITIES[i], k, profile); cells 1, 2 are the north row.
    """
    width = SIDE * D
    outline = box(X0, Y0, X0 + 2 * width, Y0 + SIDE * D)
    session.add_all(
        [_unit(CITY, "深圳市", "city", None, outline), _unit(DISTRICT, "福田区", "district", CITY, outline)]
    )
    session.flush()
    for i, (street, community) in enumerate(zip(STREETS, COMMUNITIES)):
        part = box(X0 + i * width, Y0, X0 + (i + 1) * width, Y0 + SIDE * D)
        session.add(_unit(street, f"测试{i + 1}街道", "street", DISTRICT, part))
        session.flush()
        session.add(_unit(community, f"测试{i + 1}社区", "community", street, part))
    session.flush()
    edition = BaseGridEdition(
        name=f"two-streets-{profile.name}",
        status=EditionState.PUBLISHED,
        published_at=PUBLISHED_AT,
        code_profile=profile.name,
    )
    session.add(edition)
    session.flush()
    for i, community in enumerate(COMMUNITIES):
        seq = 0
        for r in reversed(range(SIDE)):  # north first
            for c in range(SIDE):  # then west→east
                seq += 1
                x, y = X0 + i * width + c * D, Y0 + r * D
                session.add(
                    BaseCell(
                        edition_id=edition.id,
                        code=base_cell_code(community, seq, profile),
                        community_code=community,
                        geom=from_shape(box(x, y, x + D, y + D), srid=SRID),
                    )
                )
    session.flush()
    return edition


def cells_of(community: str, profile: CodeProfile) -> list[str]:
    """Return the codes of a community's base cells made by make_two_street_grid."""
    return [base_cell_code(community, k, profile) for k in range(1, SIDE * SIDE + 1)]


def centre_of(community_index: int, seq: int) -> tuple[float, float]:
    """Return (lon, lat) of the centre of cell `seq` (1-based) of community `community_index`."""
    r, c = divmod(seq - 1, SIDE)
    return X0 + community_index * SIDE * D + (c + 0.5) * D, Y0 + (SIDE - 1 - r + 0.5) * D
