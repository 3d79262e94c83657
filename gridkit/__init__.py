"""gridkit: a unified spatial base grid and departmental work grids for city grid management."""

__version__ = "0.1.0"
