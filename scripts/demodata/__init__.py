"""The demo city generator behind scripts/make_demo_data.py, one module per stage.

constants (paths, codes, seeds) and names (the vocabulary) → geometry (metres ↔ lon/lat, exact
polygons) → roads → grid (streets, communities, base cells) → subjects (buildings, residents,
entities) → work (work cells, coordinators, incidents) → writing (files, README, --check).
"""
