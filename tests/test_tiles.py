"""Vector tiles and map colours: the domain query read back with GDAL's MVT driver, the colouring
rule (touching work cells differ), and the web endpoint: ETag/304, the server cache and its
invalidation by publishing an edition or a version and by rolling back."""

from __future__ import annotations

import itertools
import math
import random

import pyogrio
import pytest
from factories import STREET, X0, Y0, D, make_base_grid
from factories_web import commit
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from gridkit import tiles
from gridkit.colouring import colour_graph, work_cell_adjacency, work_cell_colours
from gridkit.errors import NotFound, ValidationError
from gridkit.grids import work
from gridkit.grids.editions import publish_edition
from gridkit.models import SRID, BaseCell, BaseGridEdition, Building, WorkCell, WorkGridVersion
from web import create_app
from web.tiles import tile_cache

DEPT = "100001"
C1, C2 = f"{STREET}001", f"{STREET}002"
# Community 1 cut in three north-south strips, community 2 in three west-east rows.
LAYOUT = {
    f"{DEPT}{C1}01": (C1, (1, 4, 7)),
    f"{DEPT}{C1}02": (C1, (2, 5, 8)),
    f"{DEPT}{C1}03": (C1, (3, 6, 9)),
    f"{DEPT}{C2}01": (C2, (1, 2, 3)),
    f"{DEPT}{C2}02": (C2, (4, 5, 6)),
    f"{DEPT}{C2}03": (C2, (7, 8, 9)),
}
Z = 13


def tile_of(lon: float, lat: float, z: int = Z) -> tuple[int, int, int]:
    """Return the XYZ (web mercator, y from the north) tile holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


# The test grid (two 3×3 communities of ~100 m cells) lies inside this zoom-13 tile.
CENTRE = (X0 + 3 * D, Y0 + 1.5 * D)
TILE = tile_of(*CENTRE)


def read_tile(data: bytes, layer: str, path, xyz=TILE):
    """Read one layer of an MVT tile with GDAL (georeferenced from its z/x/y path) as a GeoDataFrame."""
    z, x, y = xyz
    target = path / str(z) / str(x)
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{y}.pbf").write_bytes(data)
    frame = pyogrio.read_dataframe(target / f"{y}.pbf", layer=layer)
    return frame.drop(columns=["mvt_id"])  # GDAL's feature number, not a tile attribute


def make_work_grid(session) -> WorkGridVersion:
    """Two communities; department DEPT with version 1 published in the LAYOUT's six work cells."""
    make_base_grid(session, communities=2)
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    version = work.start_draft(session, DEPT, by="test")
    for code, (community, cells) in LAYOUT.items():
        work.set_members(session, version, code, [f"{community}{n:03d}" for n in cells], name=f"网格{code[-4:]}")
    work.publish(session, version, by="test")
    return version


# -- colouring -------------------------------------------------------------------------------------


def test_colour_graph_gives_neighbours_different_colours():
    rng = random.Random(7)
    for _ in range(50):
        nodes = list(range(rng.randint(1, 40)))
        edges = [(a, b) for a, b in itertools.combinations(nodes, 2) if rng.random() < 0.2]
        colours = colour_graph(nodes, edges)
        assert set(colours) == set(nodes)
        assert all(colours[a] != colours[b] for a, b in edges)
        degree = max((sum(1 for e in edges if n in e) for n in nodes), default=0)
        assert max(colours.values()) <= degree  # greedy: never more than degree + 1 colours


def test_colour_graph_needs_few_colours_on_a_grid_of_cells():
    # A 10×10 grid where corners count as touching (king's graph): 4 colours suffice.
    nodes = [(r, c) for r in range(10) for c in range(10)]
    edges = [(a, b) for a, b in itertools.combinations(nodes, 2) if max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1]
    colours = colour_graph(nodes, edges)
    assert all(colours[a] != colours[b] for a, b in edges)
    assert max(colours.values()) == 3


def test_touching_work_cells_never_share_a_colour(session):
    version = make_work_grid(session)
    ids = dict(session.execute(select(WorkCell.code, WorkCell.id).where(WorkCell.version_id == version.id)).all())
    pairs = {frozenset(p) for p in work_cell_adjacency(session, version.id)}
    a = lambda n: ids[f"{DEPT}{C1}0{n}"]  # noqa: E731
    b = lambda n: ids[f"{DEPT}{C2}0{n}"]  # noqa: E731
    expected = {
        frozenset(p)
        for p in [(a(1), a(2)), (a(2), a(3)), (a(3), b(1)), (a(3), b(2)), (a(3), b(3)), (b(1), b(2)), (b(2), b(3))]
    }
    assert pairs == expected
    colours = work_cell_colours(session, version.id)
    assert set(colours) == set(ids.values())
    assert all(colours[x] != colours[y] for x, y in map(tuple, pairs))
    # The draft adjacency (from member base cells) agrees with the published outlines.
    assert {frozenset(p) for p in work_cell_adjacency(session, version.id, draft=True)} == expected


# -- the tile query --------------------------------------------------------------------------------


def test_tile_request_is_validated():
    with pytest.raises(NotFound) as exc:
        tiles.tile_request("streets", 1, 0, 0)
    assert exc.value.code == "tiles.unknown_layer"
    with pytest.raises(NotFound):
        tiles.tile_request("base-cells", 23, 0, 0)
    with pytest.raises(NotFound) as exc:
        tiles.tile_request("base-cells", 3, 8, 0)
    assert "0 to 7" in exc.value.message
    with pytest.raises(NotFound):
        tiles.tile_request("base-cells", 0, 0, 1)
    with pytest.raises(ValidationError):
        tiles.tile_request("work-cells", 3, 0, 0)
    with pytest.raises(ValidationError):
        tiles.tile_request("work-cells", 3, 0, 0, dept="10x")
    with pytest.raises(ValidationError):
        tiles.tile_request("base-cells", 3, 0, 0, dept=DEPT)
    with pytest.raises(ValidationError):
        tiles.tile_request("buildings", 3, 0, 0, edition=1)
    assert tiles.tile_request("base-cells", 22, 2**22 - 1, 0).key[-3:] == (22, 2**22 - 1, 0)


def test_base_cell_tile_holds_the_cells_of_the_edition_in_force(session, tmp_path):
    make_base_grid(session, communities=2)
    data = tiles.tile(session, tiles.tile_request("base-cells", *TILE))
    frame = read_tile(data, "base-cells", tmp_path)
    assert sorted(frame["code"]) == sorted(f"{c}{n:03d}" for c in (C1, C2) for n in range(1, 10))
    assert set(frame.columns) == {"code", "community_code", "geometry"}
    # GDAL georeferences the tile in EPSG:3857: the cell 001 (north-west) lands where it is stored.
    frame = frame.to_crs(4326)
    nw = frame[frame["code"] == f"{C1}001"].geometry.iloc[0]
    assert nw.centroid.distance(Point(X0 + D / 2, Y0 + 2.5 * D)) < D / 20
    # Below the layer's first zoom the tile is empty; a tile elsewhere too.
    assert tiles.tile(session, tiles.tile_request("base-cells", *tile_of(*CENTRE, 11))) == b""
    assert tiles.tile(session, tiles.tile_request("base-cells", Z, 0, 0)) == b""


def test_work_cell_tile_carries_colours_and_no_personal_field(session, tmp_path):
    version = make_work_grid(session)
    coordinator = work.add_coordinator(session, "张三", "13800138000", DEPT, [f"{DEPT}{C1}01"])
    frame = read_tile(tiles.tile(session, tiles.tile_request("work-cells", *TILE, dept=DEPT)), "work-cells", tmp_path)
    assert sorted(frame["code"]) == sorted(LAYOUT)
    assert set(frame.columns) == {"code", "name", "colour", "geometry"}
    assert coordinator.name not in frame.to_string()
    colours = dict(zip(frame["code"], frame["colour"]))
    ids = dict(session.execute(select(WorkCell.id, WorkCell.code).where(WorkCell.version_id == version.id)).all())
    for x, y in work_cell_adjacency(session, version.id):
        assert colours[ids[x]] != colours[ids[y]]
    # By version number; a draft has no tiles.
    assert tiles.tile(session, tiles.tile_request("work-cells", *TILE, dept=DEPT, version=1))
    draft = work.start_draft(session, DEPT, by="test")
    with pytest.raises(NotFound) as exc:
        tiles.tile(session, tiles.tile_request("work-cells", *TILE, dept=DEPT, version=draft.number))
    assert exc.value.code == "tiles.version_is_draft"
    with pytest.raises(NotFound):
        tiles.tile(session, tiles.tile_request("work-cells", *TILE, dept="999999"))


def test_admin_unit_and_building_tiles(session, tmp_path):
    make_base_grid(session, communities=2)
    session.add_all(
        [
            Building(
                code="B1", address="园岭路1号", floors=7, geom=from_shape(Point(X0 + D / 2, Y0 + D / 2), srid=SRID)
            ),
            Building(
                code="B2",
                floors=3,
                footprint=from_shape(MultiPolygon([box(X0 + 4 * D, Y0 + D, X0 + 4.5 * D, Y0 + 1.5 * D)]), srid=SRID),
            ),
        ]
    )
    session.flush()
    admin = read_tile(tiles.tile(session, tiles.tile_request("admin-units", *TILE)), "admin-units", tmp_path)
    assert {"440304", STREET, C1, C2} <= set(admin["code"])
    assert set(admin.columns) == {"code", "name", "level", "geometry"}
    # Buildings are drawn from zoom 14: this tile holds the south row of the grid.
    south = tile_of(X0, Y0 + D / 2, 14)
    assert tiles.tile(session, tiles.tile_request("buildings", *TILE)) == b""
    buildings = read_tile(
        tiles.tile(session, tiles.tile_request("buildings", *south)), "buildings", tmp_path / "b", south
    )
    assert sorted(buildings["code"]) == ["B1", "B2"]
    assert set(buildings.geometry.geom_type) == {"Point", "Polygon"}


# -- the web endpoint ------------------------------------------------------------------------------


@pytest.fixture
def tiles_app(fresh_settings):
    commit(fresh_settings, make_work_grid)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app


def url(layer: str, query: str = "") -> str:
    z, x, y = TILE
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")


def test_tiles_have_etags_and_revalidate_with_304(tiles_app):
    client = tiles_app.test_client()
    first = client.get(url("base-cells"))
    assert first.status_code == 200
    assert first.mimetype == "application/vnd.mapbox-vector-tile"
    assert first.headers["Cache-Control"] == "public, no-cache"
    etag = first.headers["ETag"]
    cache = tile_cache(tiles_app)
    hits = cache.hits
    again = client.get(url("base-cells"), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert cache.hits == hits + 1  # served from the server cache
    assert client.get(url("base-cells"), headers={"If-None-Match": '"other"'}).data == first.data


@pytest.mark.parametrize(
    "path, status",
    [
        ("/tiles/base-cells/23/0/0.mvt", 404),
        ("/tiles/base-cells/2/4/0.mvt", 404),
        ("/tiles/base-cells/2/0/9999999999999999999.mvt", 404),
        ("/tiles/streets/2/0/0.mvt", 404),
        ("/tiles/work-cells/2/0/0.mvt", 400),
        ("/tiles/work-cells/2/0/0.mvt?dept=abc", 400),
        ("/tiles/work-cells/2/0/0.mvt?dept=100001&version=NaN", 400),
        ("/tiles/work-cells/2/0/0.mvt?dept=100001&version=2147483648", 400),
        ("/tiles/work-cells/2/0/0.mvt?dept=100001%00", 400),
        ("/tiles/work-cells/2/0/0.mvt?dept=100001&version=7", 404),
        ("/tiles/base-cells/2/0/0.mvt?edition=2147483648", 404),
        ("/tiles/base-cells/2/0/0.mvt?edition=-1", 404),
    ],
)
def test_bad_tile_requests_are_refused_not_crashed(tiles_app, path, status):
    response = tiles_app.test_client().get(path, headers={"Accept-Language": "zh-CN"})
    assert response.status_code == status


def test_publishing_a_version_or_rolling_back_changes_the_next_tile(tiles_app, tmp_path):
    settings = tiles_app.config["GRIDKIT_SETTINGS"]
    client = tiles_app.test_client()
    before = client.get(url("work-cells", f"dept={DEPT}"))
    assert client.get(url("work-cells", f"dept={DEPT}")).data == before.data  # cached

    def merge_strips(session):
        # Version 2: the strips of community 1 become one work cell.
        draft = work.start_draft(session, DEPT, by="test")
        cells = [f"{C1}{n:03d}" for n in range(1, 10)]
        for code in (f"{DEPT}{C1}02", f"{DEPT}{C1}03"):
            work.set_members(session, draft, code, [])
        work.set_members(session, draft, f"{DEPT}{C1}01", cells)
        work.publish(session, draft, by="test")

    commit(settings, merge_strips)
    after = client.get(url("work-cells", f"dept={DEPT}"))
    assert after.headers["X-Tile-Generation"] != before.headers["X-Tile-Generation"]
    assert after.headers["ETag"] != before.headers["ETag"]
    frame = read_tile(after.data, "work-cells", tmp_path / "v2")
    assert sorted(frame["code"]) == sorted([f"{DEPT}{C1}01", *(c for c in LAYOUT if C2 in c)])
    # The old version stays reachable by number, unchanged.
    assert client.get(url("work-cells", f"dept={DEPT}&version=1")).data == before.data
    # Revalidating with the old ETag gets the new tile, not 304.
    assert (
        client.get(url("work-cells", f"dept={DEPT}"), headers={"If-None-Match": before.headers["ETag"]}).status_code
        == 200
    )

    commit(settings, lambda session: work.rollback(session, DEPT, 1, by="test"))
    rolled = read_tile(client.get(url("work-cells", f"dept={DEPT}")).data, "work-cells", tmp_path / "v3")
    assert sorted(rolled["code"]) == sorted(LAYOUT)


def test_publishing_an_edition_changes_the_next_base_cell_tile(tiles_app, tmp_path):
    settings = tiles_app.config["GRIDKIT_SETTINGS"]
    client = tiles_app.test_client()
    old = read_tile(client.get(url("base-cells")).data, "base-cells", tmp_path / "a")
    assert len(old) == 18

    def new_edition(session):
        # The same area in 2×… halves: community 1 as one cell per column strip.
        edition = BaseGridEdition(name="2027", status="draft")
        session.add(edition)
        session.flush()
        for i, community in enumerate((C1, C2)):
            for c in range(3):
                x = X0 + (i * 3 + c) * D
                session.add(
                    BaseCell(
                        edition_id=edition.id,
                        code=f"{community}{c + 1:03d}",
                        community_code=community,
                        geom=from_shape(box(x, Y0, x + D, Y0 + 3 * D), srid=SRID),
                    )
                )
        session.flush()
        publish_edition(session, edition)

    commit(settings, new_edition)
    new = read_tile(client.get(url("base-cells")).data, "base-cells", tmp_path / "b")
    assert len(new) == 6
    # The retired edition stays reachable by id.
    old_id = commit(settings, lambda s: s.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == "2026")))
    assert len(read_tile(client.get(url("base-cells", f"edition={old_id}")).data, "base-cells", tmp_path / "c")) == 18


def test_layers_json_lists_departments_in_force(tiles_app):
    body = tiles_app.test_client().get("/tiles/layers.json", headers={"Accept-Language": "zh-CN"}).get_json()
    assert [layer["name"] for layer in body["layers"]] == list(tiles.LAYERS)
    assert body["departments"] == [{"code": DEPT, "name": "城市管理", "version": 1, "label": "工作网格：城市管理"}]


def test_work_cell_labels_lie_inside_their_cells(session):
    make_work_grid(session)
    labels = tiles.work_cell_labels(session, DEPT, (X0, Y0, X0 + 6 * D, Y0 + 3 * D))
    assert [label["code"] for label in labels] == sorted(LAYOUT)
    for label in labels:
        community, cells = LAYOUT[label["code"]]
        i = 0 if community == C1 else 1
        boxes = [
            box(
                X0 + (i * 3 + (n - 1) % 3) * D,
                Y0 + (2 - (n - 1) // 3) * D,
                X0 + (i * 3 + (n - 1) % 3 + 1) * D,
                Y0 + (3 - (n - 1) // 3) * D,
            )
            for n in cells
        ]
        assert any(b.covers(Point(label["lon"], label["lat"])) for b in boxes), label
    west = tiles.work_cell_labels(session, DEPT, (X0, Y0, X0 + 2.5 * D, Y0 + 3 * D))
    assert [label["code"] for label in west] == sorted(c for c in LAYOUT if C1 in c)
