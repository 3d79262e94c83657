"""Generate base cells along roads and rivers, to a target size (issue 3 part 4, issue 13).

The package, by job:

| module | what it holds |
|---|---|
| `target.py` | `Target` (buildings or m² per cell), `GeneratedCell`, `GenerationResult`, Polsby-Popper |
| `roads.py` | OSM tags → cutting roads, the road hierarchy (major/minor), water features, carriageway pairs |
| `buildings.py` | the building rule in memory (`building_cells`); the rule is stated in `gridkit.rules.building_cell` |
| `geometry.py` | faces, shared edges, cut lines (pure shapely, metres) |
| `cutting.py` | `generate_cells`: faces → merges along the road hierarchy → cells (pure, one metric CRS) |
| `faces.py` | faces' measures, building parts, median land; a cut round splits only the faces its lines touch |
| `splitting.py` | straight cuts of groups above the maximum or too elongated |
| `storage.py` | `number_cells` (15-digit codes by the numbering rule), `to_storage` (back to EPSG:4490) |
| `layers.py` | reading road and water files (`read_layer`, `read_layers`) |
| `service.py` | `generate_base_grid`: the database part, writes a draft edition, never commits |
| `report.py` | `GenerationReport` and its parts; reasons and notes are catalogue messages |
| `preview.py` | `write_preview`: PNG or HTML (Leaflet inlined, offline) of cells over roads, water, buildings |
| `layer.py` | `target_cells_geojson`: cells against a target (the base grid page's layer); `edition_target` |
"""

from gridkit.grids.generate.buildings import building_cells
from gridkit.grids.generate.cutting import MIN_WIDTH_M, STRADDLE_M, WATER_MIN_M2, generate_cells
from gridkit.grids.generate.layers import read_layer, read_layers
from gridkit.grids.generate.report import CellNote, CellProblem, CommunityReport, GenerationReport
from gridkit.grids.generate.roads import Road, carriageway_pairs, road_features, road_lines, water_features
from gridkit.grids.generate.service import generate_base_grid
from gridkit.grids.generate.storage import STORAGE_GRID_DEG, number_cells, to_storage
from gridkit.grids.generate.target import (
    MIN_COMPACTNESS,
    STRADDLE_MAX_M2,
    GeneratedCell,
    GenerationResult,
    Target,
    check_straddle_max,
    polsby_popper,
)

__all__ = [
    "Target",
    "GeneratedCell",
    "GenerationResult",
    "generate_cells",
    "number_cells",
    "road_lines",
    "road_features",
    "Road",
    "carriageway_pairs",
    "water_features",
    "read_layer",
    "read_layers",
    "CellProblem",
    "CellNote",
    "CommunityReport",
    "GenerationReport",
    "generate_base_grid",
    "to_storage",
    "building_cells",
    "polsby_popper",
    "MIN_COMPACTNESS",
    "STRADDLE_MAX_M2",
    "check_straddle_max",
    "MIN_WIDTH_M",
    "STRADDLE_M",
    "WATER_MIN_M2",
    "STORAGE_GRID_DEG",
]
