"""Statements of one transaction run in order by a background thread, so that the client's own work
(decoding what was read, locating points, building the next bound arrays) runs while PostgreSQL works.

One transaction cannot use two connections, and one connection runs one statement at a time; but the
client need not leave that connection idle while it computes. gridkit.assign reads a table's points and
writes their cells chunk by chunk this way: PostgreSQL reads the next chunk while the client locates the
points of the last one, and updates a chunk while the client builds the next one's arrays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from typing import TypeVar

from gridkit.db.arrays import bind_arrays

__all__ = ["in_order", "results_in_order", "rows_changed_in_order"]

T = TypeVar("T")


@contextmanager
def in_order() -> Iterator[ThreadPoolExecutor]:
    """Yield an executor running the calls submitted to it one after another, in submission order, on one
    background thread. On leaving, calls not yet started are dropped (after an error nothing more is sent)
    and the one running is waited for: the connection is the caller's alone again."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridkit-sql")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def results_in_order(calls: Iterable[Callable[[], T]], *, ahead: int = 2) -> Iterator[T]:
    """Yield the results of `calls`, run one after another on a background thread, at most `ahead` of them
    submitted and not yet yielded (what they hold in memory stays bounded).

    `calls` is consumed lazily: a call is built (its arrays filled) while earlier ones run. The first
    exception of a call is raised here; calls not yet started by then are dropped (on a connection, those
    already queued behind a failed statement fail at once: its transaction is aborted).
    """
    with in_order() as pool:
        pending: deque[Future] = deque()
        for call in calls:
            pending.append(pool.submit(call))
            while len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def rows_changed_in_order(conn, query: str, params: Iterable[dict]) -> int:
    """Run `query` (an UPDATE) once per parameter set, in order, on the psycopg connection `conn`; return the
    rows changed. PostgreSQL runs one statement while the client builds the next one's parameters (numpy
    columns bound as binary arrays, gridkit.db.arrays)."""

    def run(values: dict) -> int:
        with conn.cursor() as cur:
            bind_arrays(cur)
            cur.execute(query, values)
            return cur.rowcount

    with closing(results_in_order(partial(run, p) for p in params)) as counts:
        return sum(counts)
