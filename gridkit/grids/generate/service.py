"""generate_base_grid: communities and buildings from the database, cells written as a draft edition.

Each community is worked in its CGCS2000 Gauss-Kruger zone (metres) and brought back to
EPSG:4490 by `to_storage`. Building counts in the report are made by the building rule on the
stored cells of the whole draft (`buildings.building_cells`, as assignment does at publishing),
so a cell reported within the target holds that many buildings after publishing. Never commits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from pyproj import Transformer
from sqlalchemy import exists, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from gridkit.admin import city_extent
from gridkit.coords import gauss_kruger_epsg
from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.editions import lock_edition_names
from gridkit.grids.generate.buildings import building_cells
from gridkit.grids.generate.cutting import WATER_MIN_M2, generate_cells
from gridkit.grids.generate.layers import Layers, read_layers
from gridkit.grids.generate.preview import PreviewCell, check_preview_path, write_preview
from gridkit.grids.generate.report import CellNote, CellProblem, CommunityReport, GenerationReport
from gridkit.grids.generate.roads import Road
from gridkit.grids.generate.storage import number_cells, to_storage
from gridkit.grids.generate.target import STRADDLE_MAX_M2, GenerationResult, Target, check_straddle_max
from gridkit.messages import Message
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition, Building
from gridkit.rules import EditionState, local_now
from gridkit.standard.codes import DEFAULT_PROFILE, PROFILES, CodeProfile


@dataclass
class _Community:
    """One community's generated cells, stored (EPSG:4490) and numbered, with its buildings."""

    unit: AdminUnit
    epsg: int
    area_m2: float
    result: GenerationResult
    stored: list
    codes: list[str]
    building_ids: list[int]
    notes: list[Message]
    seconds: float


def generate_base_grid(
    session: Session,
    *,
    communities: list[str] | None = None,
    roads_path,
    water_path=None,
    target: Target,
    edition_name: str | None = None,
    profile: CodeProfile | str = DEFAULT_PROFILE,
    paths: bool = False,
    water_min_m2: float = WATER_MIN_M2,
    keep_other_communities: bool = True,
    src_crs: str | None = None,
    encoding: str | None = None,
    preview=None,
    lang: str = "zh-CN",
    straddle_max_m2: float = STRADDLE_MAX_M2,
) -> GenerationReport:
    """Generate base cells for communities (None = all) and write them as a new draft edition; never commits.

    Roads and water are read from files (any CRS, reprojected to EPSG:4490); buildings come from
    the building table (footprint, or point). `water_path` may be one path or a list. With
    keep_other_communities, the cells of communities not generated are copied from the current
    edition, so the draft is a whole city grid. `preview`: a .png or .html path to draw the cells
    over roads, water and buildings (`preview.write_preview`, texts in `lang`). `straddle_max_m2`:
    a cell merged across a major road stays within this area (m², see `check_straddle_max`).
    """
    straddle_max_m2 = check_straddle_max(straddle_max_m2)
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    if preview is not None:
        check_preview_path(preview)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    units = _communities(session, communities)
    edition_name = edition_name or f"generated-{local_now():%Y%m%d-%H%M%S}"
    lock_edition_names(session)
    if session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == edition_name)) is not None:
        raise Conflict("generate.edition_exists", name=edition_name)
    # The advice to a file in metres without a CRS names the city's own zones, as for every import.
    city = city_extent(session)
    layers = read_layers(roads_path, water_path, paths=paths, src_crs=src_crs, encoding=encoding, city=city)
    _check_roads_reach(units, layers, roads_path)
    timings["read"] = time.perf_counter() - started

    if target.measure == "buildings":
        _check_buildings_loaded(session, units)
    generate_started = time.perf_counter()
    buildings: dict[int, object] = {}
    done = [
        _generate_community(session, unit, layers, target, profile, (water_min_m2, straddle_max_m2), buildings)
        for unit in units
    ]
    timings["generate"] = time.perf_counter() - generate_started

    write_started = time.perf_counter()
    edition, copied = _write_draft(session, edition_name, profile, target, done, keep_other_communities)
    timings["write"] = time.perf_counter() - write_started
    count_started = time.perf_counter()
    counts = _count_buildings(session, edition.id, done, buildings)
    timings["count"] = time.perf_counter() - count_started
    reports = [_community_report(c, counts, target) for c in done]
    if preview is not None:
        preview_started = time.perf_counter()
        _write_preview(preview, done, layers, buildings, lang)
        timings["preview"] = time.perf_counter() - preview_started
    timings["total"] = time.perf_counter() - started
    return GenerationReport(
        edition=edition.name,
        edition_id=edition.id,
        target=target.message(),
        communities=reports,
        copied_cells=copied,
        timings={k: round(v, 3) for k, v in timings.items()},
        preview=str(preview) if preview is not None else None,
    )


def _check_roads_reach(units: list[AdminUnit], layers: Layers, roads_path) -> None:
    """Refuse a roads file none of whose roads comes near any community to generate: the wrong file (another
    city) or a wrong coordinate system; the cells would be cut along nothing without a word."""
    if not layers.roads:
        raise ValidationError("generate.no_cutting_roads", file=Path(roads_path).name)
    outlines = [to_shape(u.geom) for u in units]
    if any(layers.near(outline.buffer(1e-4))[0] for outline in outlines):  # as _generate_community takes them
        return

    def extent(geoms) -> str:
        x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
        return f"{x0:.4f}–{x1:.4f} E, {y0:.4f}–{y1:.4f} N"

    codes = [u.code for u in units]
    listed = ", ".join(codes[:5]) + (f" … (+{len(codes) - 5})" if len(codes) > 5 else "")
    raise ValidationError(
        "generate.roads_elsewhere",
        file=Path(roads_path).name,
        count=len(layers.roads),
        roads=extent([r.geom for r in layers.roads]),
        communities=listed,
        where=extent(outlines),
    )


def _check_buildings_loaded(session: Session, units: list[AdminUnit]) -> None:
    """Refuse a building target when no building lies in any of the communities."""
    codes = [u.code for u in units]
    query = select(Building.id).join(AdminUnit, _in_community()).where(AdminUnit.code.in_(codes))
    if not session.scalar(select(exists(query))):
        raise ValidationError("generate.buildings_not_loaded")


def _write_draft(
    session: Session, name: str, profile: CodeProfile, target: Target, done: list[_Community], keep_others: bool
) -> tuple[BaseGridEdition, int]:
    """Write the draft edition with the generated cells (and, with keep_others, the current edition's
    cells of the other communities); return it and how many cells were copied. The note names the
    target (layer.edition_target reads it back for the base grid page)."""
    edition = BaseGridEdition(
        name=name,
        status=EditionState.DRAFT,
        code_profile=profile.name,
        note=f"generated along roads, target {target.describe()}",
    )
    session.add(edition)
    session.flush()
    rows = [
        {"edition_id": edition.id, "code": code, "community_code": c.unit.code, "geom": from_shape(polygon, srid=SRID)}
        for c in done
        for polygon, code in zip(c.stored, c.codes)
    ]
    if rows:
        session.execute(insert(BaseCell), rows)
    copied = 0
    source = current_edition(session) if keep_others else None
    if source is not None:
        copied = _copy_cells(session, source.id, edition.id, [c.unit.code for c in done])
    session.flush()
    return edition, copied


def _write_preview(path, done: list[_Community], layers: Layers, buildings: dict, lang: str) -> None:
    """Draw the generated communities' cells over their roads, water and buildings (EPSG:4490)."""
    cells = [
        PreviewCell(polygon, code, cell.status, cell.reason, cell.notes, cell.buildings)
        for c in done
        for cell, polygon, code in zip(c.result.cells, c.stored, c.codes)
    ]
    area = shapely.union_all([to_shape(c.unit.geom) for c in done])
    roads, water = layers.near(area)
    write_preview(path, cells, roads=roads, water=water, buildings=list(buildings.values()), lang=lang)


def _communities(session: Session, codes: list[str] | None) -> list[AdminUnit]:
    """Return the communities to generate (all when codes is None), refusing unknown codes."""
    query = select(AdminUnit).where(AdminUnit.level == "community").order_by(AdminUnit.code)
    if codes is not None:
        wanted = list(dict.fromkeys(codes))
        query = query.where(AdminUnit.code.in_(wanted))
    units = list(session.scalars(query))
    if codes is not None:
        missing = sorted(set(wanted) - {u.code for u in units})
        if missing:
            raise NotFound("generate.community_not_found", codes=", ".join(missing))
    if not units:
        raise NotFound("generate.no_communities")
    return units


def _in_community():
    """Return the join condition: the building's footprint (or, without one, its point) meets the community."""
    return or_(
        func.ST_Intersects(AdminUnit.geom, Building.footprint),
        (Building.footprint.is_(None)) & func.ST_Intersects(AdminUnit.geom, Building.geom),
    )


def _generate_community(
    session: Session,
    unit: AdminUnit,
    layers: Layers,
    target: Target,
    profile: CodeProfile,
    limits: tuple[float, float],
    buildings: dict,
) -> _Community:
    """Generate one community's cells in its Gauss-Kruger zone and bring them back to EPSG:4490.

    `limits`: (water_min_m2, straddle_max_m2) for generate_cells.
    """
    water_min_m2, straddle_max_m2 = limits
    started = time.perf_counter()
    community = to_shape(unit.geom)
    epsg = gauss_kruger_epsg(community.centroid.x)
    forward = Transformer.from_crs(SRID, epsg, always_xy=True)
    inverse = Transformer.from_crs(epsg, SRID, always_xy=True)

    def to_metric(geoms):
        geoms = np.asarray(geoms, dtype=object)
        if not len(geoms):
            return []
        return list(shapely.transform(geoms, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1]))))

    # Vertex by vertex, keeping the structure: to_storage pairs metric and stored vertices.
    (community_m,) = to_metric([community])
    roads, water = layers.near(community.buffer(1e-4))  # ~10 m, so lines ending on the boundary are found
    roads_m = [Road(g, r.major, r.name, r.ref) for r, g in zip(roads, to_metric([r.geom for r in roads]))]
    rows = session.execute(
        select(Building.id, func.coalesce(Building.footprint, Building.geom))
        .join(AdminUnit, AdminUnit.code == unit.code)
        .where(_in_community())
    ).all()
    for building_id, geom in rows:
        buildings.setdefault(building_id, to_shape(geom))
    footprints = [buildings[i] for i, _ in rows]
    buildings_m = to_metric(footprints) if rows or target.measure == "buildings" else None
    result = generate_cells(
        community_m,
        roads_m,
        to_metric(water),
        buildings_m,
        target,
        water_min_m2=water_min_m2,
        straddle_max_m2=straddle_max_m2,
    )

    notes = []
    metric_cells = [c.polygon for c in result.cells]
    stored = to_storage(metric_cells, inverse.transform, community_m, community)
    if not shapely.is_valid(stored).all():
        # Rounding to 1e-9° can fold a sub-millimetre edge; keep full precision for this community.
        stored = to_storage(metric_cells, inverse.transform, community_m, community, grid=None)
        notes.append(Message("generate.note.full_precision"))
    if not shapely.is_valid(stored).all():
        raise RuntimeError(f"generated cells of community {unit.code} are invalid after transformation")
    codes = number_cells(list(stored), unit.code, profile)
    return _Community(
        unit,
        int(epsg),
        float(community_m.area),
        result,
        list(stored),
        codes,
        [i for i, _ in rows],
        notes,
        time.perf_counter() - started,
    )


def _count_buildings(session: Session, edition_id: int, done: list[_Community], buildings: dict) -> dict[str, int]:
    """Return the number of buildings per generated cell code, by the building rule on the stored draft.

    Cells of communities not generated (copied) that the buildings reach take part too, so a
    building straddling into one goes where assignment will put it.
    """
    cells = {code: polygon for c in done for polygon, code in zip(c.stored, c.codes)}
    ids = sorted(buildings)
    if not ids:
        return {}
    geoms = np.asarray([buildings[i] for i in ids], dtype=object)
    generated = {c.unit.code for c in done}
    reach = shapely.union_all(shapely.envelope(geoms))
    for code, geom in session.execute(
        select(BaseCell.code, BaseCell.geom).where(
            BaseCell.edition_id == edition_id,
            BaseCell.community_code.not_in(generated),
            func.ST_Intersects(BaseCell.geom, func.ST_GeomFromWKB(shapely.to_wkb(reach), SRID)),
        )
    ):
        cells[code] = to_shape(geom)
    codes = sorted(cells)
    owner = building_cells([cells[c] for c in codes], geoms)
    held = np.bincount(owner[owner >= 0], minlength=len(codes))
    return dict(zip(codes, held.tolist()))


def _community_report(c: _Community, counts: dict[str, int], target: Target) -> CommunityReport:
    """Return the report of one community, with each cell's status from its count by the building rule."""
    outside, cell_notes, in_target, held = [], [], 0, 0
    for cell, code in zip(c.result.cells, c.codes):
        if target.measure == "buildings" and cell.status != "water":
            n = counts.get(code, 0)
            if n != cell.buildings:  # a footprint across a community boundary went to the other side
                cell.buildings = n
                cell.status = "below" if n < target.min else "above" if n > target.max else "ok"
                cell.reason = (
                    None if cell.status == "ok" else Message(f"generate.reason.{cell.status}", size=target.size(n))
                )
        else:
            cell.buildings = counts.get(code, 0)
        held += cell.buildings
        in_target += cell.status == "ok"
        if cell.status != "ok":
            outside.append(CellProblem(code, cell.status, cell.reason, cell.buildings, round(cell.area_m2, 1)))
        cell_notes.extend(CellNote(code, note) for note in cell.notes)
    return CommunityReport(
        code=c.unit.code,
        name=c.unit.name,
        epsg=c.epsg,
        faces=int(c.result.faces),
        cells=len(c.result.cells),
        in_target=in_target,
        water_cells=int(sum(cell.water for cell in c.result.cells)),
        buildings=held,
        area_m2=round(c.area_m2, 1),
        tiling_error_m2=float(c.result.tiling_error_m2),
        seconds=round(c.seconds, 3),
        outside=outside,
        notes=c.notes,
        cell_notes=cell_notes,
        carriageways=c.result.carriageways,
        min_compactness=round(min((cell.compactness for cell in c.result.cells if not cell.water), default=1.0), 3),
        counts={code: cell.buildings for cell, code in zip(c.result.cells, c.codes)},
    )


def _copy_cells(session: Session, source_id: int, edition_id: int, skip_communities: list[str]) -> int:
    """Copy the cells of every community not in skip_communities from one edition to another; return how many."""
    others = select(literal(edition_id), BaseCell.code, BaseCell.community_code, BaseCell.geom).where(
        BaseCell.edition_id == source_id, BaseCell.community_code.not_in(skip_communities)
    )
    result = session.execute(
        insert(BaseCell).from_select(["edition_id", "code", "community_code", "geom"], others).returning(BaseCell.id)
    )
    return len(result.all())
