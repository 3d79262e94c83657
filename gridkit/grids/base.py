"""Base grid editions and base cells: lookups (the point → base cell rule lives in gridkit.assign)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.errors import NotFound, ValidationError
from gridkit.messages import Message
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition


def check_lon_lat(lon: float, lat: float) -> None:
    """Raise ValidationError unless (lon, lat) is a plausible point in China (CGCS2000)."""
    if 73 <= lat <= 136 and 3 <= lon <= 54:
        raise ValidationError("grids.lat_lon_swapped", lon=lon, lat=lat)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError("grids.not_lon_lat", lon=lon, lat=lat)
    if not (73 <= lon <= 136 and 3 <= lat <= 54):
        raise ValidationError("grids.outside_china", lon=lon, lat=lat)


def state_name(status: str) -> Message:
    """Return the name of an edition or version state (draft, published, retired) to put in a sentence."""
    return Message(f"grids.state.{status}")


def current_edition(session: Session, at: datetime | None = None) -> BaseGridEdition | None:
    """Return the base grid edition in force at `at` (default: now): the published one."""
    return session.scalar(
        select(BaseGridEdition)
        .where(rules.edition_in_force(BaseGridEdition, at))
        .order_by(BaseGridEdition.published_at.desc())
        .limit(1)
    )


def published_or_newest(session: Session) -> BaseGridEdition | None:
    """Return the published edition, else the newest draft or retired one, else None."""
    return current_edition(session) or session.scalar(
        select(BaseGridEdition).order_by(BaseGridEdition.id.desc()).limit(1)
    )


def edition_named(session: Session, name: str | None) -> BaseGridEdition:
    """Return the edition with this name, or the published (else newest) one when name is None."""
    if name is None:
        edition = published_or_newest(session)
        if edition is None:
            raise NotFound("grids.no_edition")
        return edition
    edition = session.scalar(select(BaseGridEdition).where(BaseGridEdition.name == name))
    if edition is None:
        raise NotFound("grids.edition_not_found", name=name)
    return edition


def list_editions(session: Session) -> list[dict]:
    """Return every edition with its status, dates and cell count, oldest first."""
    counts = select(BaseCell.edition_id, func.count().label("cells")).group_by(BaseCell.edition_id).subquery()
    rows = session.execute(
        select(BaseGridEdition, func.coalesce(counts.c.cells, 0))
        .outerjoin(counts, counts.c.edition_id == BaseGridEdition.id)
        .order_by(BaseGridEdition.id)
    )
    return [
        {
            "name": e.name,
            "status": e.status,
            "code_profile": e.code_profile,
            "cells": n,
            "created_at": rules.iso(e.created_at),
            "published_at": rules.iso(e.published_at),
            "retired_at": rules.iso(e.retired_at),
        }
        for e, n in rows
    ]


def list_base_cells(session: Session, edition: BaseGridEdition, *, community: str | None = None) -> list[dict]:
    """Return the edition's cells (code, community, area in m²), by code."""
    query = (
        select(
            BaseCell.code,
            BaseCell.community_code,
            AdminUnit.name.label("community_name"),
            func.ST_Area(func.Geography(BaseCell.geom)).label("area_m2"),
        )
        .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
        .where(BaseCell.edition_id == edition.id)
        .order_by(BaseCell.code)
    )
    if community:
        query = query.where(BaseCell.community_code == community)
    return [dict(r._mapping, area_m2=round(r.area_m2, 1)) for r in session.execute(query)]
