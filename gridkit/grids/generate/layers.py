"""Reading the road and water files generation cuts along (any CRS in, EPSG:4490 out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from gridkit.grids.generate.roads import Road, road_features, water_features


def read_layer(
    path, crs: int = 4490, *, src_crs: str | None = None, encoding: str | None = None, city: tuple | None = None
):
    """Return a road or water file as a GeoDataFrame in EPSG:`crs`, read by gridkit.io.read_vector.

    So road files get the same handling as every import: encodings, .prj / --src-crs (gcj02 too),
    safe zips, repairs reported; a file without a CRS is refused, with the advice of every import (`city`: the
    extent of the city's admin units, gridkit.admin.city_extent, whose 3-degree zones metres are told).
    """
    from gridkit.io.vector import read_vector

    frame = read_vector(path, src_crs=src_crs, encoding=encoding, target_srid=crs, city=city).gdf
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty]


@dataclass
class Layers:
    """Roads and water in EPSG:4490, with spatial indexes to take each community's share."""

    roads: list[Road]
    water: np.ndarray

    def __post_init__(self):
        self._road_tree = shapely.STRtree([r.geom for r in self.roads]) if self.roads else None
        self._water_tree = shapely.STRtree(self.water) if len(self.water) else None

    def near(self, area) -> tuple[list[Road], list]:
        """Return the roads and water features that intersect `area`."""
        roads = [self.roads[i] for i in self._road_tree.query(area, predicate="intersects")] if self._road_tree else []
        water = list(self.water[self._water_tree.query(area, predicate="intersects")]) if self._water_tree else []
        return roads, water


def read_layers(
    roads_path,
    water_path=None,
    *,
    paths: bool = False,
    src_crs: str | None = None,
    encoding: str | None = None,
    city: tuple | None = None,
) -> Layers:
    """Return the cutting roads and the water of the given files. `water_path`: one path or a list; `city`: as for
    `read_layer`."""
    roads = road_features(read_layer(roads_path, src_crs=src_crs, encoding=encoding, city=city), paths=paths)
    water_paths = (
        [] if water_path is None else ([water_path] if isinstance(water_path, (str, Path)) else list(water_path))
    )
    options = {"src_crs": src_crs, "encoding": encoding, "city": city}
    water = [g for p in water_paths for g in water_features(read_layer(p, **options))]
    return Layers(roads, np.asarray(water, dtype=object))
