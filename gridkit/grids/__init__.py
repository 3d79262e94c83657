"""The unified base grid (base.py) and the departments' work grids (work.py)."""
