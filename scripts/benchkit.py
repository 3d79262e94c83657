"""What the benchmark scripts share: peak memory of a step, a session rolled back at the end, the city's units.

Imported by the scripts next to it (scripts/bench_*.py put this folder on sys.path); not run itself.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shapely.geometry import MultiPolygon
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db

# The benchmark city's codes: one city, one district, one street holding every community.
CITY, DISTRICT, STREET = "990100", "990101", "990101001"


class PeakRSS:
    """Peak resident set size of a process during a block, minus its size at the start (MB)."""

    def __init__(self, pid: int | str = "self"):
        self.pid = pid
        self.mb: float | None = None

    def _status(self, field: str) -> float:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise KeyError(field)

    def __enter__(self):
        if self.pid == "self":
            # Hand freed heap back to the OS first, or earlier steps' memory hides this one's.
            gc.collect()
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except OSError:
                pass
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current RSS
            self.start = self._status("VmRSS")
        except OSError:
            self.start = None
        return self

    def __exit__(self, *exc):
        if self.start is not None:
            try:
                self.mb = self._status("VmHWM") - self.start
            except OSError:
                self.mb = None
        return False


class ChildrenPeak:
    """The largest peak resident size (VmHWM, MB) any child process of this one reached during a
    block, read from /proc while they run (every `every` seconds).

    Not getrusage(RUSAGE_CHILDREN): a child started by vfork + exec is charged at its exec with the
    peak of the memory it shared with its parent until then, i.e. this process's own size.
    """

    def __init__(self, every: float = 0.02):
        self.every = every
        self.mb = 0.0  # kept across blocks: the largest of them all

    def _children(self) -> list[str]:
        pids = []
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as fh:
                    pids += fh.read().split()
            except OSError:
                pass
        return pids

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            for pid in self._children():
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        status = dict(line.split(":", 1) for line in fh if ":" in line)
                    self.mb = max(self.mb, int(status["VmHWM"].split()[0]) / 1024)
                except (OSError, KeyError, ValueError):
                    pass  # gone meanwhile, or not yet a process of its own

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


@contextmanager
def rolled_back_session(url: str) -> Iterator[Session]:
    """Yield a session on `url` inside one outer transaction that is rolled back at the end: nothing is kept."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            outer = conn.begin()
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            try:
                yield session
            finally:
                session.close()
                outer.rollback()
    finally:
        engine.dispose()


def insert_admin_units(session: Session, outline, communities: list) -> list[str]:
    """Insert the city, district and street over `outline` and one community per polygon; return their codes."""
    units = [
        {"code": c, "name": n, "level": lv, "parent": p, "wkt": MultiPolygon([outline]).wkt}
        for c, n, lv, p in (
            (CITY, "基准市", "city", None),
            (DISTRICT, "基准区", "district", CITY),
            (STREET, "基准街道", "street", DISTRICT),
        )
    ]
    codes = [f"{STREET}{k + 1:03d}" for k in range(len(communities))]
    units += [
        {"code": c, "name": f"基准{k + 1}社区", "level": "community", "parent": STREET, "wkt": MultiPolygon([g]).wkt}
        for k, (c, g) in enumerate(zip(codes, communities))
    ]
    session.execute(
        text(
            "INSERT INTO admin_unit (code, name, level, parent_code, geom) "
            "VALUES (:code, :name, :level, :parent, ST_GeomFromText(:wkt, 4490))"
        ),
        units,
    )
    return codes
