"""The folium skeleton of the city map: Leaflet from our static files, layers fetched by JS."""

from __future__ import annotations

from functools import lru_cache

import folium
from flask import current_app, url_for

from gridkit.grids.problems import PROBLEM_TYPES
from web.i18n import strings

# Shown only while the database has no geometry yet (a new city before its admin units are imported): the
# whole country the standard is written for (lon/lat), not a city of its own.
NO_DATA_EXTENT = (73.5, 18.1, 135.1, 53.6)
# OpenStreetMap tiles are WGS84 / Web Mercator, so CGCS2000 coordinates go on them unshifted.
# Offline the tiles fail to load and the grid is still drawn on a blank background.
# A deployment with its own tile server sets app.config["GRIDKIT_TILES"].
OSM_TILES = {
    "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "attribution": "© OpenStreetMap contributors",
    "max_native_zoom": 19,
}
MAX_ZOOM = 21
# Base cells are fetched from this zoom on (a view at zoom 14 holds a few hundred 100 m cells);
# their sequence numbers are drawn from LABEL_ZOOM on, the full codes from FULL_LABEL_ZOOM on.
MIN_CELL_ZOOM = 12
LABEL_ZOOM = 16
FULL_LABEL_ZOOM = 17

JS_STRINGS = (
    "map.layer.districts",
    "map.layer.streets",
    "map.layer.communities",
    "map.layer.base_cells",
    "map.layer.osm",
    "map.status.loading",
    "map.status.count",
    "map.status.zoom_in",
    "map.status.too_many",
    "map.status.error",
    "map.status.no_data",
    "map.tooltip.community",
    "map.tooltip.area",
    "map.legend.title",
)

# Strings of the base grid page's script (gridkit-basegrid.js), one per problem type among them.
BASEGRID_JS_STRINGS = (
    "basegrid.problems.checking",
    "basegrid.problems.none",
    "basegrid.problems.count",
    "basegrid.problems.error",
    "basegrid.problems.area",
    "basegrid.problems.more",
    "basegrid.problems.no_location",
    "basegrid.layer.problems",
    "basegrid.legend.problem",
    *(f"basegrid.problem.{kind}" for kind in PROBLEM_TYPES),
)


class OfflineMap(folium.Map):
    """A folium Map that loads Leaflet from our static files only, never from a CDN."""

    def __init__(self, *args, js_url: str, css_url: str, **kwargs):
        super().__init__(*args, **kwargs)
        # Instance lists: folium's add_js_link/add_css_link change the class-level lists in place.
        # No jQuery, Bootstrap or awesome-markers: the page uses none of them.
        self.default_js = [("leaflet", js_url)]
        self.default_css = [("leaflet_css", css_url)]


LOCATE_STRINGS = (
    "locate.loading",
    "locate.outside",
    "locate.base_cell",
    "locate.community",
    "locate.no_cell",
    "locate.unplaced",
    "locate.no_coordinator",
    "locate.dept",
    "locate.separator",
    "locate.search_placeholder",
    "locate.search_label",
    "locate.no_hits",
    *(
        f"locate.kind.{kind}"
        for kind in ("point", "base_cell", "work_cell", "building", "admin_unit", "address", "coordinator")
    ),
)


def locate_config() -> dict:
    """Return the config of gridkit-locate.js: "who is responsible here" on click, and the search box."""
    return {"whois": url_for("api.whois"), "search": url_for("api.search_"), "strings": strings(*LOCATE_STRINGS)}


def city_map(extent) -> dict:
    """Return the map pieces for a template: header, html, script, and the config for gridkit-map.js."""
    return leaflet_map(
        extent,
        api={"adminUnits": url_for("api.admin_units"), "baseCells": url_for("api.base_cells")},
        strings=strings(*JS_STRINGS),
        locate=locate_config(),
    )


def basegrid_map(extent, edition_id: int | None) -> dict:
    """Return the map pieces of the base grid page: the city map on one edition, with its problems."""
    pieces = city_map(extent)
    pieces["config"].update(edition=edition_id)
    pieces["config"]["api"]["problems"] = url_for("api.basegrid_problems")
    pieces["config"]["strings"].update(strings(*BASEGRID_JS_STRINGS))
    return pieces


def leaflet_map(extent, **config) -> dict:
    """Return header, html and script of a folium map fitted to `extent` (lon/lat, or None), and a
    config for the page's script: the map's and basemap's JS names, the zoom levels, plus `config`."""
    tiles = current_app.config.get("GRIDKIT_TILES", OSM_TILES)
    pieces = _folium_pieces(
        None if extent is None else tuple(extent),
        tuple(sorted(tiles.items())),
        url_for("static", filename="vendor/leaflet/leaflet.js"),
        url_for("static", filename="vendor/leaflet/leaflet.css"),
    )
    config = {
        "mapName": pieces["mapName"],
        "tileLayerName": pieces["tileLayerName"],
        "hasData": extent is not None,
        "minCellZoom": MIN_CELL_ZOOM,
        "labelZoom": LABEL_ZOOM,
        "fullLabelZoom": FULL_LABEL_ZOOM,
        "leafletStrings": strings("map.control.zoom_in", "map.control.zoom_out", "map.control.layers"),
        **config,
    }
    return {"header": pieces["header"], "html": pieces["html"], "script": pieces["script"], "config": config}


# Rendering a folium map takes ~30 ms (most of a page's time); the result depends only on these
# arguments, so each is rendered once per process.
@lru_cache(maxsize=128)
def _folium_pieces(extent, tiles: tuple, js_url: str, css_url: str) -> dict:
    tiles = dict(tiles)
    minx, miny, maxx, maxy = extent or NO_DATA_EXTENT
    m = OfflineMap(
        location=((miny + maxy) / 2, (minx + maxx) / 2),
        zoom_start=4,
        tiles=None,
        position="absolute",
        js_url=js_url,
        css_url=css_url,
    )
    tile_layer = folium.TileLayer(
        tiles["url"],
        attr=tiles["attribution"],
        name="basemap",
        max_zoom=MAX_ZOOM,
        max_native_zoom=tiles.get("max_native_zoom", 19),
    )
    tile_layer.add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]], max_zoom=LABEL_ZOOM + 1)
    figure = m.get_root()
    figure.render()  # fills figure.header / html / script
    return {
        "header": figure.header.render(),
        "html": figure.html.render(),
        "script": figure.script.render(),
        "mapName": m.get_name(),
        "tileLayerName": tile_layer.get_name(),
    }
