"""A COPY fed from a thread (gridkit.io.subjects.staging.CopyStream) through a socket whose send buffer holds
several MB: every chunk arrives, and a bad row in a late chunk or an interruption of the caller leaves nothing."""

from __future__ import annotations

import socket

import psycopg
import pytest
from sqlalchemy import text

from gridkit import db
from gridkit.io.subjects.staging import COPY_SEND_BUFFER, CopyStream

CHUNKS, ROWS = 6, 40_000  # ~1.6 MB of COPY text a chunk: several chunks queued in the widened buffer


def _chunk(k: int, bad: int | None = None) -> bytes:
    """Rows (n, s) of chunk k as COPY text; the row numbered `bad`, if in it, has a word where n is a number."""
    lines = []
    for n in range(k * ROWS, (k + 1) * ROWS):
        lines.append(f"{'x' if n == bad else n}\t行{n} {'-' * 24}\n")
    return "".join(lines).encode()


def _send_buffer(conn) -> tuple[int, int]:
    """Return the connection's socket family and send buffer size."""
    with socket.socket(fileno=conn.pgconn.socket) as sock:
        try:
            return sock.family, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        finally:
            sock.detach()  # the connection's own descriptor: not closed here


def _granted(size: int) -> int:
    """The send buffer this kernel gives a Unix socket asking for `size` bytes (Linux doubles it and caps it)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        before = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if before >= size:
            return before
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        return a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


@pytest.fixture
def copy_table(session):
    session.execute(text("CREATE TEMP TABLE gk_copy_stream (n int NOT NULL, s text) ON COMMIT DROP"))
    return db.driver_connection(session)


def _count(session) -> tuple[int, int]:
    return tuple(session.execute(text("SELECT count(*), coalesce(sum(n), 0) FROM gk_copy_stream")).one())


def test_every_chunk_arrives_through_the_widened_send_buffer(session, copy_table):
    family, before = _send_buffer(copy_table)
    with copy_table.cursor() as cur, CopyStream(cur, "COPY gk_copy_stream FROM STDIN") as stream:
        for k in range(CHUNKS):
            stream.write(_chunk(k))
        _, during = _send_buffer(copy_table)
    n = CHUNKS * ROWS
    assert _count(session) == (n, n * (n - 1) // 2)
    assert session.scalar(text("SELECT s FROM gk_copy_stream WHERE n = 123456")) == f"行123456 {'-' * 24}"
    if family == socket.AF_UNIX:  # a server on this machine (the embedded cluster, the tests' own)
        assert during == max(before, _granted(COPY_SEND_BUFFER)) and during > 1_000_000
    else:  # TCP: its buffers grow by themselves, left alone
        assert during == before


def test_a_bad_row_in_a_late_chunk_fails_the_copy_and_leaves_nothing(session, copy_table):
    bad = (CHUNKS - 1) * ROWS + 17  # in the last chunk, while the earlier ones wait in the socket
    with pytest.raises(psycopg.errors.InvalidTextRepresentation, match='"x"'):
        with session.begin_nested():
            session.execute(text("SELECT 1"))  # the savepoint is taken at the session's first statement in it
            with copy_table.cursor() as cur, CopyStream(cur, "COPY gk_copy_stream FROM STDIN") as stream:
                for k in range(CHUNKS):
                    stream.write(_chunk(k, bad))
    assert _count(session) == (0, 0)
    # The connection works on: the same COPY without the bad row.
    with copy_table.cursor() as cur, CopyStream(cur, "COPY gk_copy_stream FROM STDIN") as stream:
        stream.write(_chunk(0))
    assert _count(session)[0] == ROWS


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interruption_while_chunks_are_queued_writes_nothing_and_surfaces(session, copy_table, error):
    with pytest.raises(error):
        with session.begin_nested():
            session.execute(text("SELECT 1"))  # the savepoint is taken at the session's first statement in it
            with copy_table.cursor() as cur, CopyStream(cur, "COPY gk_copy_stream FROM STDIN") as stream:
                for k in range(CHUNKS):
                    stream.write(_chunk(k))
                    if k == CHUNKS - 2:
                        raise error("stopped by the caller")  # as Ctrl+C, or a check failing, between chunks
    assert _count(session) == (0, 0)
