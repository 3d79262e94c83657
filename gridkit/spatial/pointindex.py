"""Exact bulk point-in-polygon lookup with PostGIS ST_Covers semantics, on a raster pre-index.

Why not shapely/GEOS `covers`: PostGIS answers ST_Covers(polygon, point) with its own winding
number test (liblwgeom `point_in_ring[_rtree]` and `determineSide`) in plain double arithmetic,
after a bounding-box test on float-rounded boxes. GEOS uses robust predicates, so for points
within ~1e-15 degrees of an edge the two can disagree. This module repeats the PostGIS
arithmetic operation by operation (numpy float64, each operation rounded on its own, as the
x86-64 build of PostGIS does), so the answers agree bit for bit, points on edges included.

How:
1. The polygons' extent is cut into square pixels, in the stored lon/lat doubles (nothing is
   reprojected). Every edge is rasterised conservatively (each pixel grown by MARGIN pixel
   widths), marking boundary pixels; every pixel centre is filled by a scanline pass. A pixel
   no edge comes near lies wholly inside one polygon or none, so far from every edge that the
   PostGIS arithmetic cannot err there: its points are answered by one array lookup.
2. Points in boundary pixels are tested exactly against the pixel's candidate polygons (those
   with an edge in the pixel, or covering its centre), using only the polygon's edges that
   reach the pixel's row: the float bounding-box test, then the on-edge test and the winding
   number as liblwgeom computes them. Edges outside the row cannot change the answer there:
   PostGIS skips every edge whose y-range misses the point.
3. Among the polygons covering a point the one given first wins (callers pass base cells
   ordered by code, as `ORDER BY code LIMIT 1` does in PostGIS).

Holes, overlapping and nested polygons are handled (overlaps go to the exact test). Segments
shorter than 1e-12 are ignored, as liblwgeom's cached test does: the one PostGIS runs when one
polygon meets many points, as in bulk joins (a lone uncached ST_Covers call counts them, which
can matter only for points within 1e-12 of such a segment's height).

Everything is numpy on large arrays, which releases the GIL, so chunks run on several threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely

# Pixels are grown by this many pixel widths when edges are rasterised. It must exceed the
# rounding error of pixel coordinates (see _u_error, ~1e-9 px for lon/lat) and, in degrees, the
# distance from an edge within which PostGIS's unrobust side test may err (~1e-15°): 1e-4 px is
# ~4e-9° for 100 m cells.
MARGIN = 1e-4
# Pixels per side of a typical polygon: more pixels make fewer boundary points but a bigger
# raster to build and to read from.
PIXELS_PER_CELL_SIDE = 24
MAX_PIXELS = 1 << 24
CHUNK = 1 << 19
# liblwgeom ignores segments shorter than this (squared length < 1e-12 * 1e-12).
_ZERO_LENGTH2 = 1e-12 * 1e-12

OUTSIDE = -1


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate the integer ranges [start, start + count) into one array."""
    counts = counts.astype(np.int64, copy=False)
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    out = np.arange(total, dtype=np.int64)
    out -= np.repeat(ends - counts - starts.astype(np.int64, copy=False), counts)
    return out


def _u_error(ncols: int, nrows: int, coord_ulp: float, scale: float) -> float:
    """A bound on the rounding error of pixel coordinates (in pixels) across the raster."""
    return 16 * (float(np.spacing(np.float64(max(ncols, nrows) + 4))) + coord_ulp * scale)


def float_down(a: np.ndarray) -> np.ndarray:
    """Round doubles down to the next float32, as liblwgeom's next_float_down does for boxes."""
    f = np.asarray(a, dtype=np.float64).astype(np.float32)
    bad = f.astype(np.float64) > a
    f[bad] = np.nextafter(f[bad], np.float32(-np.inf))
    return f.astype(np.float64)


def float_up(a: np.ndarray) -> np.ndarray:
    """Round doubles up to the next float32, as liblwgeom's next_float_up does for boxes."""
    f = np.asarray(a, dtype=np.float64).astype(np.float32)
    bad = f.astype(np.float64) < a
    f[bad] = np.nextafter(f[bad], np.float32(np.inf))
    return f.astype(np.float64)


def default_threads() -> int:
    """Return how many threads lookups use by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class PointIndex:
    """A raster pre-index of polygons answering "first polygon covering each point" exactly.

    Build it with `PointIndex.build(polygons)`; `locate(x, y)` returns, per point, the position
    in `polygons` of the first polygon that covers it (PostGIS ST_Covers), or -1.
    """

    count: int
    x0: float
    y0: float
    scale: float  # pixels per degree
    ncols: int
    nrows: int
    # Per pixel: polygon position (>= 0), OUTSIDE, or -(2 + boundary pixel rank).
    raster: np.ndarray
    cand_ptr: np.ndarray  # boundary pixel rank -> slice of cand_poly
    cand_poly: np.ndarray  # candidate polygons, ascending within a pixel
    cand_es: np.ndarray  # per candidate: its first edge in band_edge for the pixel's row
    cand_ec: np.ndarray  # per candidate: how many edges
    box: np.ndarray  # (4, count): float-rounded xmin, ymin, xmax, ymax (NaN if empty)
    ex1: np.ndarray
    ey1: np.ndarray
    ex2: np.ndarray
    ey2: np.ndarray
    e_ring: np.ndarray  # ring rank of each edge in its polygon: 0 exterior, 1.. holes
    e_live: np.ndarray  # False for the segments liblwgeom ignores (zero length)
    band_keys: np.ndarray  # sorted unique polygon * nrows + row
    band_ptr: np.ndarray
    band_edge: np.ndarray  # edges reaching each (polygon, row), in ring order
    has_holes: bool

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def build(
        cls, polygons, *, pixels_per_cell_side: float = PIXELS_PER_CELL_SIDE, max_pixels: int = MAX_PIXELS
    ) -> PointIndex:
        """Return the index of `polygons` (shapely Polygons in one CRS; None or empty never cover)."""
        geoms = np.asarray(polygons, dtype=object)
        count = len(geoms)
        ex1, ey1, ex2, ey2, e_poly, e_ring, e_live, box = cls._edges(geoms, count)
        live = ~np.isnan(box[0])
        if not live.any():
            return cls._empty(count, box)
        x0, y0, scale, ncols, nrows, coord_ulp = cls._grid(box, live, pixels_per_cell_side, max_pixels)
        npix = ncols * nrows
        u1, v1 = (ex1 - x0) * scale, (ey1 - y0) * scale
        u2, v2 = (ex2 - x0) * scale, (ey2 - y0) * scale
        # 1. Boundary pixels: every pixel (grown by MARGIN) that an edge touches.
        edge_pix, edge_poly = cls._edge_pixels(u1, v1, u2, v2, e_poly, ncols, nrows, coord_ulp, scale)
        micro = np.flatnonzero(~e_live & ((ex1 != ex2) | (ey1 != ey2)))
        if len(micro):
            # liblwgeom skips segments shorter than 1e-12 but the fill counts them: across the
            # polygon's width, the rows such a segment reaches get the exact test.
            edge_pix, edge_poly = cls._micro_rows(micro, e_poly, v1, v2, box, x0, scale, ncols, edge_pix, edge_poly)
        boundary = np.zeros(npix, dtype=bool)
        boundary[edge_pix] = True
        # 2. Scanline fill of pixel centres (even-odd over all rings of a polygon), as spans.
        raster, overlap, spans = cls._fill(u1, v1, u2, v2, e_poly, ncols, nrows, boundary)
        # 3. Candidates of boundary pixels: polygons with an edge there, or covering the centre.
        pix, poly, cand_ptr = cls._candidates(raster, boundary, overlap, spans, edge_pix, edge_poly, count)
        del overlap, spans, edge_pix, edge_poly, boundary
        # 4. Edges of each (polygon, pixel row), for the exact test.
        band_keys, band_ptr, band_edge, cand_es, cand_ec = cls._bands(v1, v2, e_poly, ncols, nrows, pix, poly)
        return cls(
            count=count,
            x0=x0,
            y0=y0,
            scale=scale,
            ncols=ncols,
            nrows=nrows,
            raster=raster,
            cand_ptr=cand_ptr,
            cand_poly=poly,
            cand_es=cand_es,
            cand_ec=cand_ec,
            box=box,
            ex1=ex1,
            ey1=ey1,
            ex2=ex2,
            ey2=ey2,
            e_ring=e_ring,
            e_live=e_live,
            band_keys=band_keys,
            band_ptr=band_ptr,
            band_edge=band_edge,
            has_holes=bool((e_ring > 0).any()),
        )

    @staticmethod
    def _edges(geoms: np.ndarray, count: int):
        """Return the polygons' edges (ends, polygon, ring rank, liveness) and float-rounded boxes."""
        if count:
            kinds = shapely.get_type_id(geoms)
            if np.any((kinds != 3) & (kinds != -1)):
                raise TypeError("PointIndex takes polygons only")
        rings, ring_poly = shapely.get_rings(geoms, return_index=True)
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        ring_first = np.r_[0, np.flatnonzero(np.diff(ring_poly)) + 1] if len(ring_poly) else np.zeros(0, np.int64)
        ring_rank = np.arange(len(ring_poly)) - np.repeat(ring_first, np.diff(np.r_[ring_first, len(ring_poly)]))

        # Edges: consecutive vertices of one ring, in stored order and direction.
        same = coord_ring[:-1] == coord_ring[1:]
        start = np.flatnonzero(same)
        ex1, ey1 = coords[start, 0].copy(), coords[start, 1].copy()
        ex2, ey2 = coords[start + 1, 0].copy(), coords[start + 1, 1].copy()
        e_ring_id = coord_ring[start]
        e_poly = ring_poly[e_ring_id].astype(np.int64)
        e_ring = ring_rank[e_ring_id].astype(np.int32)
        dx, dy = ex2 - ex1, ey2 - ey1
        e_live = (dx * dx + dy * dy) >= _ZERO_LENGTH2

        # Float boxes as PostGIS serialises them: the double box rounded outwards to float32.
        box = np.full((4, count), np.nan)
        if len(coords):
            cpoly = ring_poly[coord_ring]
            firsts = np.r_[0, np.flatnonzero(np.diff(cpoly)) + 1]
            polys = cpoly[firsts]
            box[0, polys] = float_down(np.minimum.reduceat(coords[:, 0], firsts))
            box[1, polys] = float_down(np.minimum.reduceat(coords[:, 1], firsts))
            box[2, polys] = float_up(np.maximum.reduceat(coords[:, 0], firsts))
            box[3, polys] = float_up(np.maximum.reduceat(coords[:, 1], firsts))
        return ex1, ey1, ex2, ey2, e_poly, e_ring, e_live, box

    @staticmethod
    def _grid(box: np.ndarray, live: np.ndarray, pixels_per_cell_side: float, max_pixels: int):
        """Return the raster's origin, scale, size and coordinate ulp for the live polygons' boxes."""
        # The pixel size: a fraction of a typical polygon's side, capped by max_pixels.
        xmin, ymin = box[0, live].min(), box[1, live].min()
        xmax, ymax = box[2, live].max(), box[3, live].max()
        sides = np.sqrt((box[2, live] - box[0, live]) * (box[3, live] - box[1, live]))
        sides = sides[sides > 0]
        extent = max(xmax - xmin, ymax - ymin, 1e-9)
        pixel = float(np.median(sides)) / pixels_per_cell_side if len(sides) else extent / 256
        # Pixels far above the coordinates' resolution: MARGIN pixels stay many ulps wide.
        coord_ulp = float(np.spacing(max(abs(xmin), abs(xmax), abs(ymin), abs(ymax), 1.0)))
        pixel = max(pixel, extent / 65536, 1e6 * coord_ulp)
        while True:
            x0, y0 = xmin - 2 * pixel, ymin - 2 * pixel
            ncols = int((xmax - x0) / pixel) + 3
            nrows = int((ymax - y0) / pixel) + 3
            if ncols * nrows <= max_pixels:
                break
            pixel *= 1.05 * np.sqrt(ncols * nrows / max_pixels)
        scale = 1.0 / pixel
        return x0, y0, scale, ncols, nrows, coord_ulp

    @staticmethod
    def _edge_pixels(u1, v1, u2, v2, e_poly, ncols, nrows, coord_ulp, scale):
        """Return (pixel, polygon) of every pixel, grown by MARGIN, that each edge touches."""
        lo_u, hi_u = np.minimum(u1, u2), np.maximum(u1, u2)
        c0 = np.floor(lo_u - MARGIN).astype(np.int64)
        ncol_e = np.floor(hi_u + MARGIN).astype(np.int64) - c0 + 1
        e = np.repeat(np.arange(len(u1)), ncol_e)
        col = _ranges(c0, ncol_e)
        xa = np.maximum(col - MARGIN, lo_u[e])
        xb = np.minimum(col + 1 + MARGIN, hi_u[e])
        du, dv = (u2 - u1)[e], (v2 - v1)[e]
        vertical = du == 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            va = np.where(vertical, v1[e], v1[e] + (xa - u1[e]) / du * dv)
            vb = np.where(vertical, v2[e], v1[e] + (xb - u1[e]) / du * dv)
            # A steep edge turns the rounding of xa - u1 into a large error in v: widen the
            # rows by it, but never beyond the edge's own rows.
            slack = np.where(vertical, 0.0, np.abs(dv / du) * _u_error(ncols, nrows, coord_ulp, scale)) + MARGIN
        lo_v, hi_v = np.minimum(v1, v2)[e], np.maximum(v1, v2)[e]
        r0 = np.floor(np.maximum(np.minimum(va, vb) - slack, lo_v - MARGIN)).astype(np.int64)
        nrow_e = np.floor(np.minimum(np.maximum(va, vb) + slack, hi_v + MARGIN)).astype(np.int64) - r0 + 1
        del lo_v, hi_v, slack
        edge_pix = np.repeat(col, nrow_e) + _ranges(r0, nrow_e) * ncols
        edge_poly = np.repeat(e_poly[e], nrow_e)
        return edge_pix, edge_poly

    @classmethod
    def _fill(cls, u1, v1, u2, v2, e_poly, ncols, nrows, boundary):
        """Return the filled raster, the overlap mask (or None) and the sorted spans; mark overlaps in `boundary`."""
        npix = ncols * nrows
        span_start, span_end, span_poly = cls._scanline(u1, v1, u2, v2, e_poly, ncols, nrows)
        order = np.argsort(span_start, kind="stable")
        span_start, span_end, span_poly = span_start[order], span_end[order], span_poly[order]
        # Spans of a valid tiling do not overlap: a pixel's polygon is that of the last span
        # started at or before it, if that span has not ended. Where a span starts before the
        # earlier ones have all ended (overlapping polygons, or floating noise on a shared edge),
        # the exact test decides, up to where the earlier spans reach: past a nested span's end,
        # the last span started is no longer the one covering the pixel.
        reach = np.maximum.accumulate(span_end)
        late = np.flatnonzero(span_start[1:] < reach[:-1]) + 1
        last = np.full(npix, -1, dtype=np.int32)
        last[span_start] = np.arange(len(span_start), dtype=np.int32)
        np.maximum.accumulate(last, out=last)
        started = last >= 0
        np.maximum(last, 0, out=last)
        raster = np.where(
            started & (np.arange(npix, dtype=span_end.dtype) < span_end[last]), span_poly[last], OUTSIDE
        ).astype(np.int32)
        del last, started
        overlap = None
        if len(late):
            o_start = span_start[late]
            o_len = reach[late - 1] - o_start
            overlap = np.zeros(npix, dtype=bool)
            overlap[_ranges(o_start, o_len)] = True
            boundary |= overlap
        return raster, overlap, (span_start, span_end, span_poly)

    @staticmethod
    def _candidates(raster, boundary, overlap, spans, edge_pix, edge_poly, count):
        """Return the boundary pixels' candidates (pixel, polygon, cand_ptr); rank them in `raster`."""
        span_start, span_end, span_poly = spans
        npix = len(raster)
        centre_pix = np.flatnonzero(boundary & (raster >= 0))
        pix = [edge_pix, centre_pix]
        poly = [edge_poly, raster[centre_pix].astype(np.int64)]
        if overlap is not None:
            # Every polygon whose spans reach an overlap.
            seen = np.r_[0, np.cumsum(overlap)]
            hit = seen[span_end] > seen[span_start]
            opix = _ranges(span_start[hit], span_end[hit] - span_start[hit])
            opoly = np.repeat(span_poly[hit].astype(np.int64), span_end[hit] - span_start[hit])
            keep = overlap[opix]
            pix.append(opix[keep])
            poly.append(opoly[keep])
        del centre_pix
        pix, poly = np.concatenate(pix), np.concatenate(poly)
        keys = pix * count + poly
        del pix, poly
        keys.sort()
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        pix, poly = keys // count, (keys % count).astype(np.int32)
        del keys
        rank = np.cumsum(boundary, dtype=np.int64 if npix >= 2**31 - 1 else np.int32) - 1
        nbound = int(rank[-1]) + 1
        raster[boundary] = (-2 - rank[boundary]).astype(np.int32)
        cand_ptr = np.zeros(nbound + 1, dtype=np.int64)
        np.cumsum(np.bincount(rank[pix], minlength=nbound), out=cand_ptr[1:])
        return pix, poly, cand_ptr

    @staticmethod
    def _bands(v1, v2, e_poly, ncols, nrows, pix, poly):
        """Return the edges of each (polygon, pixel row) and each candidate's slice of them."""
        lo_v, hi_v = np.minimum(v1, v2), np.maximum(v1, v2)
        b0 = np.floor(lo_v - MARGIN).astype(np.int64)
        nb = np.floor(hi_v + MARGIN).astype(np.int64) - b0 + 1
        band_edge = np.repeat(np.arange(len(v1), dtype=np.int32), nb)
        band_key = np.repeat(e_poly, nb) * nrows + _ranges(b0, nb)
        order = np.argsort(band_key, kind="stable")  # stable: ring order kept
        band_key, band_edge = band_key[order], band_edge[order]
        firsts = np.r_[0, np.flatnonzero(np.diff(band_key)) + 1]
        band_keys = band_key[firsts]
        band_ptr = np.r_[firsts, len(band_key)].astype(np.int64)
        # Each candidate's edges in its pixel's row, looked up once here rather than per point.
        want = poly.astype(np.int64) * nrows + pix // ncols
        j = np.minimum(np.searchsorted(band_keys, want), len(band_keys) - 1)
        cand_es = band_ptr[j]
        cand_ec = np.where(band_keys[j] == want, band_ptr[j + 1] - cand_es, 0)
        return band_keys, band_ptr, band_edge, cand_es, cand_ec

    @classmethod
    def _empty(cls, count: int, box: np.ndarray) -> PointIndex:
        z64, z32, zf = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0)
        return cls(
            count=count,
            x0=0.0,
            y0=0.0,
            scale=1.0,
            ncols=0,
            nrows=0,
            raster=z32,
            cand_ptr=np.zeros(1, np.int64),
            cand_poly=z32,
            cand_es=z64,
            cand_ec=z64,
            box=box,
            ex1=zf,
            ey1=zf,
            ex2=zf,
            ey2=zf,
            e_ring=z32,
            e_live=np.zeros(0, bool),
            band_keys=z64,
            band_ptr=np.zeros(1, np.int64),
            band_edge=z32,
            has_holes=False,
        )

    @staticmethod
    def _micro_rows(micro, e_poly, v1, v2, box, x0, scale, ncols, edge_pix, edge_poly):
        poly = e_poly[micro]
        r0 = np.floor(np.minimum(v1, v2)[micro] - MARGIN).astype(np.int64)
        nr = np.floor(np.maximum(v1, v2)[micro] + MARGIN).astype(np.int64) - r0 + 1
        c0 = np.floor((box[0, poly] - x0) * scale - MARGIN).astype(np.int64)
        nc = np.floor((box[2, poly] - x0) * scale + MARGIN).astype(np.int64) - c0 + 1
        rows = _ranges(r0, nr)
        row_poly = np.repeat(poly, nr)
        row_c0, row_nc = np.repeat(c0, nr), np.repeat(nc, nr)
        pix = np.repeat(rows * ncols + row_c0, row_nc) + _ranges(np.zeros(len(rows), np.int64), row_nc)
        return np.concatenate([edge_pix, pix]), np.concatenate([edge_poly, np.repeat(row_poly, row_nc)])

    @staticmethod
    def _scanline(u1, v1, u2, v2, e_poly, ncols, nrows):
        """Return spans (first pixel, end pixel, polygon) of pixel centres inside each polygon.

        Even-odd rule per pixel row. Approximate near edges, which is harmless: the pixels
        there are boundary pixels and get the exact test.
        """
        lo, hi = np.minimum(v1, v2), np.maximum(v1, v2)
        r0 = np.ceil(lo - 0.5).astype(np.int64)  # rows whose centre r + 0.5 is in [lo, hi)
        n = np.maximum(np.ceil(hi - 0.5).astype(np.int64) - r0, 0)
        e = np.repeat(np.arange(len(u1)), n)
        row = _ranges(r0, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (u2 - u1) / (v2 - v1)
        uc = u1[e] + (row + 0.5 - v1[e]) * slope[e]
        # A nearly level edge may put its crossing far off: keep it on the edge, whose pixels
        # are boundary pixels anyway.
        np.clip(uc, np.minimum(u1, u2)[e], np.maximum(u1, u2)[e], out=uc)
        key = e_poly[e] * nrows + row
        order = np.lexsort((uc, key))
        key, uc = key[order], uc[order]
        # Each (polygon, row) has an even number of crossings: pair them up in order.
        ua, ub, key = uc[0::2], uc[1::2], key[0::2]
        c_from = np.clip(np.ceil(ua - 0.5), 0, ncols).astype(np.int64)
        c_to = np.clip(np.ceil(ub - 0.5), 0, ncols).astype(np.int64)
        keep = c_to > c_from
        row = key[keep] % nrows
        # Pixel numbers fit in int32 below 2**31 pixels: half the memory of the full-raster passes.
        index = np.int32 if ncols * nrows < 2**31 - 1 else np.int64
        return (
            (row * ncols + c_from[keep]).astype(index),
            (row * ncols + c_to[keep]).astype(index),
            (key[keep] // nrows).astype(np.int32),
        )

    # -- lookups -------------------------------------------------------------------------------------
    def locate(self, x: np.ndarray, y: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """Return, per point, the position of the first polygon covering it, or -1 (int32)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError("x and y must be 1-d arrays of the same length")
        out = np.empty(len(x), dtype=np.int32)
        bounds = [(s, min(s + CHUNK, len(x))) for s in range(0, len(x), CHUNK)]
        threads = default_threads() if threads is None else max(1, threads)

        def run(bound):
            s, t = bound
            out[s:t] = self._locate_chunk(x[s:t], y[s:t])

        if threads > 1 and len(bounds) > 1:
            with ThreadPoolExecutor(max_workers=min(threads, len(bounds))) as pool:
                list(pool.map(run, bounds))
        else:
            for bound in bounds:
                run(bound)
        return out

    def _locate_chunk(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(x)
        if self.ncols == 0:
            return np.full(n, OUTSIDE, dtype=np.int32)
        u = x - self.x0
        u *= self.scale
        v = y - self.y0
        v *= self.scale
        # NaN coordinates fail every comparison: outside.
        inside = (u >= 0) & (u < self.ncols) & (v >= 0) & (v < self.nrows)
        with np.errstate(invalid="ignore"):  # NaN and far-off points: masked below
            col = u.astype(np.int64)
            row = v.astype(np.int64)
        del u, v
        pix = row * self.ncols
        pix += col
        del col
        pix[~inside] = 0
        result = self.raster[pix]
        result[~inside] = OUTSIDE
        del pix, inside
        hard = np.flatnonzero(result <= -2)
        if len(hard):
            result[hard] = self._exact(x[hard], y[hard], -2 - result[hard])
        return result

    def _exact(self, x: np.ndarray, y: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Exact answers for points in boundary pixels, as PostGIS computes ST_Covers."""
        starts = self.cand_ptr[rank]
        counts = self.cand_ptr[rank + 1] - starts
        pair_pt = np.repeat(np.arange(len(x)), counts)
        pair_cand = _ranges(starts, counts)
        pair_poly = self.cand_poly[pair_cand]
        # Short-circuit 1 of PostGIS covers(): the point's float box inside the polygon's.
        pxd, pyd = float_down(x), float_down(y)
        pxu, pyu = float_up(x), float_up(y)
        box = self.box
        ok = (
            (pxd[pair_pt] >= box[0, pair_poly])
            & (pyd[pair_pt] >= box[1, pair_poly])
            & (pxu[pair_pt] <= box[2, pair_poly])
            & (pyu[pair_pt] <= box[3, pair_poly])
        )
        pair_pt, pair_poly, pair_cand = pair_pt[ok], pair_poly[ok], pair_cand[ok]
        result = np.full(len(x), OUTSIDE, dtype=np.int32)
        if not len(pair_pt):
            return result
        # The edges of the candidate polygon that reach the point's pixel row.
        ec = self.cand_ec[pair_cand]
        row_pair = np.repeat(np.arange(len(pair_pt)), ec)
        edge = self.band_edge[_ranges(self.cand_es[pair_cand], ec)]
        status = self._pair_status(x, y, pair_pt, row_pair, edge, len(pair_pt))
        covered = np.flatnonzero(status != -1)
        # Pairs come by point, candidates ascending: the first covered pair has the first polygon.
        pts = pair_pt[covered]
        first = np.r_[True, pts[1:] != pts[:-1]] if len(pts) else np.zeros(0, bool)
        result[pts[first]] = pair_poly[covered[first]]
        return result

    def _pair_status(self, x, y, pair_pt, row_pair, edge, npairs) -> np.ndarray:
        """liblwgeom's point_in_polygon per pair: -1 outside, 0 on the boundary, 1 inside."""
        pt = pair_pt[row_pair]
        px, py = x[pt], y[pt]
        x1, y1, x2, y2 = self.ex1[edge], self.ey1[edge], self.ex2[edge], self.ey2[edge]
        # determineSide(), operation by operation.
        side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        live = self.e_live[edge]
        # isOnSegment(): the point within the segment's box.
        on = (
            (side == 0.0)
            & live
            & (np.minimum(x1, x2) <= px)
            & (px <= np.maximum(x1, x2))
            & (np.minimum(y1, y2) <= py)
            & (py <= np.maximum(y1, y2))
        )
        up = (y1 <= py) & (py < y2) & (side > 0) & live
        down = (y2 <= py) & (py < y1) & (side < 0) & live
        wind = up.astype(np.int32) - down.astype(np.int32)
        if not len(edge):
            return np.full(npairs, -1, dtype=np.int8)
        # Groups: one (pair, ring) each; rows are ordered by pair, then ring.
        ring = self.e_ring[edge]
        change = np.r_[True, (row_pair[1:] != row_pair[:-1]) | (ring[1:] != ring[:-1])]
        g = np.flatnonzero(change)
        g_pair, g_ring = row_pair[g], ring[g]
        g_on = np.logical_or.reduceat(on, g)
        g_wind = np.add.reduceat(wind, g)
        g_status = np.where(g_on, 0, np.where(g_wind != 0, 1, -1)).astype(np.int8)
        status = np.full(npairs, -1, dtype=np.int8)  # no edge in reach: outside
        ext = g_ring == 0
        status[g_pair[ext]] = g_status[ext]
        if self.has_holes:
            hole = (~ext) & (g_status != -1)
            h_pair, h_status = g_pair[hole], g_status[hole]
            if len(h_pair):
                first = np.r_[True, h_pair[1:] != h_pair[:-1]]
                h_pair, h_status = h_pair[first], h_status[first]
                # Inside the exterior ring: inside a hole is outside, on a hole's edge is on.
                inside_ext = status[h_pair] == 1
                status[h_pair[inside_ext]] = np.where(h_status[inside_ext] == 1, -1, 0)
        return status
