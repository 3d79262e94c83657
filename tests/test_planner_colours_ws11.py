"""The planner's GeoJSON carries each work cell's colour (gridkit.colouring): touching work cells
differ, and a published version has the same colours as its vector tiles; a draft is recoloured
after an edit. Through the planner API too, with the palette the page's script uses."""

from __future__ import annotations

import itertools

from factories import X0, Y0, D
from factories_web import PASSWORD, sign_in
from shapely.geometry import shape
from test_tiles import DEPT, TILE, commit, make_work_grid, read_tile

from gridkit import layers, tiles
from gridkit.colouring import PALETTE
from gridkit.grids import work
from gridkit.users import add_user
from web import create_app


def touching_pairs(features):
    shapes = {f["properties"]["code"]: shape(f["geometry"]) for f in features}
    return [(a, b) for a, b in itertools.combinations(sorted(shapes), 2) if shapes[a].intersects(shapes[b])]


def test_published_work_cells_have_the_colours_of_the_tiles(session, tmp_path):
    version = make_work_grid(session)
    collection = layers.version_work_cells_geojson(session, version.id)
    colours = {f["properties"]["code"]: f["properties"]["colour"] for f in collection["features"]}
    assert all(isinstance(c, int) and 0 <= c < len(PALETTE) for c in colours.values())
    pairs = touching_pairs(collection["features"])
    assert pairs and all(colours[a] != colours[b] for a, b in pairs)
    z, x, y = TILE
    tile = tiles.tile(session, tiles.tile_request("work-cells", z, x, y, dept=DEPT))
    frame = read_tile(tile, "work-cells", tmp_path)
    assert dict(zip(frame["code"], frame["colour"], strict=True)) == colours
    # Each base cell carries its work cell's colour.
    cells = layers.version_cells_geojson(session, version.id)
    assert len(cells["features"]) == 18
    assert cells["colours"] == colours


def test_a_draft_is_coloured_from_its_members_and_recoloured_after_an_edit(session):
    published = make_work_grid(session)
    draft = work.start_draft(session, DEPT, by="test")
    before = layers.version_work_cells_geojson(session, draft.id)["features"]
    same = {f["properties"]["code"]: f["properties"]["colour"] for f in before}
    assert same == {
        f["properties"]["code"]: f["properties"]["colour"]
        for f in layers.version_work_cells_geojson(session, published.id)["features"]
    }
    # Split a strip into a new work cell: every touching pair still differs, the new one included.
    codes = sorted(same)
    cells = [c["properties"]["code"] for c in layers.version_cells_geojson(session, draft.id)["features"]]
    first_strip = [c for c in cells if c.startswith(codes[0][6:18])][:1]
    new_code = codes[0][:18] + "09"
    work.set_members(session, draft, new_code, first_strip, name="新网格")
    after = layers.version_work_cells_geojson(session, draft.id)["features"]
    colours = {f["properties"]["code"]: f["properties"]["colour"] for f in after}
    assert new_code in colours
    pairs = touching_pairs(after)
    assert any(new_code in pair for pair in pairs)
    assert all(colours[a] != colours[b] for a, b in pairs)
    assert layers.version_cells_geojson(session, draft.id)["colours"] == colours


def test_planner_api_and_page_give_colours_and_the_palette(fresh_settings):
    version_id = commit(fresh_settings, lambda session: make_work_grid(session).id)
    commit(fresh_settings, lambda session: add_user(session, "planner1", "planner", password=PASSWORD))
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    sign_in(client, "planner1")
    work_cells = client.get(f"/api/planner/versions/{version_id}/work-cells").get_json()["features"]
    colours = {f["properties"]["code"]: f["properties"]["colour"] for f in work_cells}
    overview = client.get(f"/api/planner/versions/{version_id}").get_json()
    assert overview["colours"] == colours
    # A view's cells carry the colours of their work cells only.
    view = client.get(f"/api/planner/versions/{version_id}/cells?bbox={X0},{Y0},{X0 + D / 2},{Y0 + D / 2}").get_json()
    assert {f["properties"]["work_cell"] for f in view["features"]} == set(view["colours"])
    assert len(view["colours"]) == 1 and view["colours"].items() <= colours.items()
    page = client.get(f"/planner/version/{version_id}").get_data(as_text=True)
    assert all(f'"{colour}"' in page for colour in PALETTE)  # the map's config holds the palette
