"""A preview of generated cells a planner can judge: cells over roads, water and buildings, out-of-target cells marked.

`write_preview(path, cells, roads=…, water=…, buildings=…)` writes PNG or HTML by the file's
suffix. Geometry in lon/lat (EPSG:4490). PNG is drawn here (numpy scanline fill, zlib), so it
needs no plotting library; HTML is one Leaflet page with the layers as GeoJSON, a popup per cell
(code, status, reason, notes) and a legend, with Leaflet inlined from the copy packaged with gridkit
(gridkit.vendor), so the page opens offline and loads nothing from the network.
"""

from __future__ import annotations

import html
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from gridkit.errors import ValidationError
from gridkit.messages import Message
from gridkit.vendor import leaflet_inline

COLOURS = {
    "ok": (196, 230, 190),
    "below": (250, 200, 140),
    "above": (240, 128, 128),
    "water": (170, 205, 240),
    "edge": (30, 30, 30),
    "marked": (190, 0, 190),
    "building": (110, 110, 110),
    "major": (150, 30, 30),
    "minor": (150, 150, 150),
    "river": (120, 170, 225),
}
PNG_WIDTH = 1600


@dataclass
class PreviewCell:
    """One cell to show: lon/lat polygon, code, status ('ok', 'below', 'above', 'water'), reason and notes."""

    polygon: object
    code: str
    status: str
    reason: Message | None = None
    notes: list[Message] = field(default_factory=list)
    buildings: int = 0


def check_preview_path(path) -> Path:
    """Return `path` as a Path if it names a .png or .html file, else raise ValidationError."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".html", ".htm"):
        raise ValidationError("generate.preview_format", path=str(path))
    return path


def write_preview(path, cells: list[PreviewCell], *, roads=(), water=(), buildings=(), lang: str = "zh-CN") -> Path:
    """Write the preview to `path` (.png or .html) and return the path. `roads`: roads.Road in lon/lat."""
    path = check_preview_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        path.write_bytes(_png(cells, list(roads), list(water), list(buildings)))
    else:
        path.write_text(_html(cells, list(roads), list(water), list(buildings), lang), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------- PNG


class _Canvas:
    """An RGB raster over lon/lat bounds, x scaled by cos(latitude) so shapes keep their proportions."""

    def __init__(self, bounds, width: int = PNG_WIDTH):
        minx, miny, maxx, maxy = bounds
        pad = 0.02 * max(maxx - minx, maxy - miny)
        self.minx, self.maxy = minx - pad, maxy + pad
        kx = math.cos(math.radians((miny + maxy) / 2))
        self.scale = width / ((maxx - minx + 2 * pad) * kx)
        self.kx = kx
        height = max(int((maxy - miny + 2 * pad) * self.scale), 1)
        self.pixels = np.full((height, width, 3), 255, dtype=np.uint8)

    def xy(self, coords: np.ndarray) -> np.ndarray:
        """Return pixel coordinates (column, row) of lon/lat coordinates."""
        return np.column_stack(
            [(coords[:, 0] - self.minx) * self.kx * self.scale, (self.maxy - coords[:, 1]) * self.scale]
        )

    def fill(self, geom, colour) -> None:
        """Fill a polygon (holes left open) by even-odd scanlines through pixel centres."""
        rings = shapely.get_rings(shapely.get_parts(geom))
        edges = []
        for ring in rings:
            p = self.xy(shapely.get_coordinates(ring))
            edges.append(np.column_stack([p[:-1], p[1:]]))
        if not edges:
            return
        e = np.concatenate(edges)
        height, width = self.pixels.shape[:2]
        top, bottom = max(int(e[:, [1, 3]].min()), 0), min(int(e[:, [1, 3]].max()) + 1, height)
        if top >= bottom:
            return
        left, right = max(int(e[:, [0, 2]].min()), 0), min(int(e[:, [0, 2]].max()) + 2, width)
        if left >= right:
            return
        rows = np.arange(top, bottom) + 0.5
        y0, y1 = e[:, 1][None, :], e[:, 3][None, :]
        crosses = (y0 <= rows[:, None]) != (y1 <= rows[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            x = e[:, 0][None, :] + (rows[:, None] - y0) * (e[:, 2] - e[:, 0])[None, :] / (y1 - y0)
        x = np.sort(np.where(crosses, x, np.inf), axis=1)
        # Spans between the 1st and 2nd, 3rd and 4th … crossing of each row (even-odd rule).
        starts, ends = x[:, 0::2], x[:, 1::2][:, : x[:, 0::2].shape[1]]
        if ends.shape[1] < starts.shape[1]:
            starts = starts[:, : ends.shape[1]]
        row = np.broadcast_to(np.arange(len(rows))[:, None], starts.shape)
        ok = np.isfinite(starts) & np.isfinite(ends)
        lo = np.clip(np.ceil(starts[ok] - 0.5).astype(int) - left, 0, right - left)
        hi = np.clip(np.floor(ends[ok] - 0.5).astype(int) + 1 - left, 0, right - left)
        diff = np.zeros((len(rows), right - left + 1), dtype=np.int32)
        np.add.at(diff, (row[ok], lo), 1)
        np.add.at(diff, (row[ok], hi), -1)
        mask = np.cumsum(diff, axis=1)[:, :-1] > 0
        self.pixels[top:bottom, left:right][mask] = colour

    def line(self, geom, colour, width: float = 1.0) -> None:
        """Draw the lines of geom (or the outline of a polygon) `width` pixels wide."""
        height, w = self.pixels.shape[:2]
        for part in shapely.get_parts(shapely.boundary(geom) if geom.geom_type.endswith("Polygon") else geom):
            for line in shapely.get_parts(part):
                p = self.xy(shapely.get_coordinates(line))
                if len(p) < 2:
                    continue
                seg = np.hypot(*(p[1:] - p[:-1]).T)
                steps = np.maximum(np.ceil(seg * 2), 1).astype(int)
                t = np.concatenate([np.arange(n) / n for n in steps])
                a = np.repeat(p[:-1], steps, axis=0)
                b = np.repeat(p[1:], steps, axis=0)
                pts = a + (b - a) * t[:, None]
                half = max(width / 2, 0.5)
                for dx in np.arange(-half + 0.5, half, 1.0):
                    for dy in np.arange(-half + 0.5, half, 1.0):
                        c = np.clip(np.round(pts[:, 0] + dx).astype(int), 0, w - 1)
                        r = np.clip(np.round(pts[:, 1] + dy).astype(int), 0, height - 1)
                        self.pixels[r, c] = colour

    def png(self) -> bytes:
        """Return the raster as PNG bytes."""
        height, width = self.pixels.shape[:2]
        raw = b"".join(b"\x00" + self.pixels[r].tobytes() for r in range(height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            return struct.pack(">I", len(data)) + kind + data + crc

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
        )


def _png(cells, roads, water, buildings) -> bytes:
    bounds = shapely.total_bounds([c.polygon for c in cells]) if cells else (0, 0, 1, 1)
    canvas = _Canvas(bounds)
    for i, cell in enumerate(cells):
        # Neighbouring cells of one status differ a little in shade, so each cell reads on its own.
        shade = (i * 7) % 4 * 9
        canvas.fill(cell.polygon, tuple(max(v - shade, 0) for v in COLOURS.get(cell.status, COLOURS["ok"])))
    clip = shapely.box(*bounds).buffer(0.001)
    for w in water:
        if w.geom_type.endswith("Polygon"):
            canvas.fill(w.intersection(clip), COLOURS["water"])
        else:
            canvas.line(w.intersection(clip), COLOURS["river"], 1.5)
    for b in buildings:
        if b.geom_type.endswith("Polygon"):
            canvas.fill(b, COLOURS["building"])
        else:
            canvas.line(b.buffer(0.00002), COLOURS["building"], 1)
    for road in roads:
        canvas.line(road.geom.intersection(clip), COLOURS["major" if road.major else "minor"], 2.5 if road.major else 1)
    for cell in cells:
        canvas.line(cell.polygon, COLOURS["edge"], 1.5)
    for cell in cells:  # out of target (water aside): a red outline on top
        if cell.status in ("below", "above"):
            canvas.line(cell.polygon, COLOURS["marked"], 3)
    return canvas.png()


# --------------------------------------------------------------------------------------- HTML


def _features(items) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
            for geom, props in items
        ],
    }


def _html(cells, roads, water, buildings, lang: str) -> str:
    def text(m):
        return m.render(lang) if m is not None else None

    layers = {
        "cells": _features(
            (
                c.polygon,
                {
                    "code": c.code,
                    "status": c.status,
                    "buildings": c.buildings,
                    "reason": text(c.reason),
                    "notes": [text(n) for n in c.notes],
                },
            )
            for c in cells
        ),
        "roads": _features((r.geom, {"major": r.major, "name": r.label}) for r in roads),
        "water": _features((w, {}) for w in water),
        "buildings": _features((b, {}) for b in buildings),
    }
    bounds = shapely.total_bounds([c.polygon for c in cells]) if cells else (0, 0, 1, 1)
    colours = {k: "#{:02x}{:02x}{:02x}".format(*v) for k, v in COLOURS.items()}
    legend = {
        status: Message(f"generate.preview.{status}").render(lang) for status in ("ok", "below", "above", "water")
    }
    leaflet_css, leaflet_js = leaflet_inline()
    parts = {
        "DATA": _script_json(layers),
        "COLOURS": json.dumps(colours),
        "LEGEND": _script_json(legend),
        "BOUNDS": json.dumps([[bounds[1], bounds[0]], [bounds[3], bounds[2]]]),
        "TITLE": html.escape(Message("generate.preview.title").render(lang)),
        "LANG": lang,
        "LEAFLET_CSS": leaflet_css,
        "LEAFLET_JS": leaflet_js,
    }
    # One pass: a placeholder written in the data (a road named "__TITLE__") is never substituted.
    return re.sub(r"__([A-Z_]+?)__", lambda m: parts.get(m.group(1), m.group(0)), _PAGE)


def _script_json(value) -> str:
    """Return value as JSON that is safe inside a <script> element (no '</' to end it early)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


_PAGE = """<!DOCTYPE html>
<html lang="__LANG__"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>__LEAFLET_CSS__</style>
<script>__LEAFLET_JS__</script>
<style>html,body,#map{height:100%;margin:0}.legend{background:#fff;padding:6px 8px;font:13px sans-serif}
.legend i{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:middle}</style>
</head><body><div id="map"></div><script>
const data = __DATA__, colours = __COLOURS__, legend = __LEGEND__;
// Names, reasons and notes are data (road names come from the roads file): shown as text, never as HTML.
const entities = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
const esc = s => String(s).replace(/[&<>"']/g, c => entities[c]);
const map = L.map('map', {preferCanvas: true});
map.fitBounds(__BOUNDS__);
const marked = f => ['below', 'above'].includes(f.properties.status);
const cells = L.geoJSON(data.cells, {style: f => ({color: marked(f) ? colours.marked : colours.edge,
  weight: marked(f) ? 3 : 1, fillColor: colours[f.properties.status] || colours.ok, fillOpacity: 0.7}),
  onEachFeature: (f, layer) => layer.bindPopup([f.properties.code,
    f.properties.status + ' · ' + f.properties.buildings, f.properties.reason,
    ...f.properties.notes].filter(Boolean).map(esc).join('<br>'))}).addTo(map);
const water = L.geoJSON(data.water, {style: {color: colours.river, weight: 1, fillColor: colours.water,
  fillOpacity: 0.6}}).addTo(map);
const buildings = L.geoJSON(data.buildings, {style: {color: colours.building, weight: 0.5, fillOpacity: 0.8},
  interactive: false}).addTo(map);
const roads = L.geoJSON(data.roads, {style: f => ({color: f.properties.major ? colours.major : colours.minor,
  weight: f.properties.major ? 3 : 1})}).bindTooltip(l => esc(l.feature.properties.name || '')).addTo(map);
const box = L.control({position: 'topright'});
box.onAdd = () => { const d = L.DomUtil.create('div', 'legend');
  d.innerHTML = Object.entries(legend)
    .map(([k, v]) => `<div><i style="background:${colours[k]}"></i>${esc(v)}</div>`).join('');
  return d; };
box.addTo(map);
window.gridkitPreview = {map, layers: {cells, water, buildings, roads}};
</script></body></html>
"""
