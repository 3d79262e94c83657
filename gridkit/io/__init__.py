"""Reading and writing files at the edge: vector layers in (vector.py), import reports out (report.py)."""

from gridkit.io.report import write_report
from gridkit.io.vector import VectorRead, VectorReadError, read_vector

__all__ = ["VectorRead", "VectorReadError", "read_vector", "write_report"]
