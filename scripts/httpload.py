"""A load generator for the web benchmarks: keep-alive HTTP/1.1 connections on raw sockets, spread
over worker processes, open loop at an offered rate (or closed loop without one).

Why not threads with http.client or requests: the client shares the benchmark machine's two cores
and, in one process, a GIL; a Python client that costs as much per request as the server measures
itself. Here each worker process runs one event loop (selectors) over its connections, and a
request costs the client a send and a few recv calls.

Open loop (`rate`): the requests are due on a fixed schedule (request k at start + k / rate, dealt
round-robin to the connections) and a latency counts from the due time, so a server that falls
behind is not hidden (no coordinated omission): a request due while its connection still waits
for the previous answer is late by that wait, and the lateness is counted.

Imported by the scripts next to it (scripts/bench_*.py put this folder on sys.path); not run itself.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import random
import re
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    """What a run measured: achieved requests/s, latencies (ms), statuses and the last body size."""

    rate: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    size: int = 0


def _request_bytes(port: int, target, headers: dict | None) -> tuple[str, bytes]:
    """Return (path, request bytes) of `target`: a path, or (path, extra headers)."""
    path, extra = (target, None) if isinstance(target, str) else target
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in {**(headers or {}), **(extra or {})}.items()]
    return path, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Conn:
    """One keep-alive connection and the response it is reading."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.busy = False
        self.due = 0.0
        self.path = ""
        self.buf = b""
        self.open()

    def open(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""

    def send(self, payload: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(payload)
        self.sock.setblocking(False)
        self.busy = True

    def read(self):
        """Read what arrived; return (status, body size, close) once the response is complete, else None."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        length, close = 0, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if len(self.buf) < end + 4 + length:
            return None
        self.buf = self.buf[end + 4 + length :]
        self.busy = False
        return status, length, close


def _worker(port, targets, headers, start, stop, rate, slots, total_slots, worker, workers, out) -> None:
    """Run connections `slots` (of `total_slots` in all workers) until `stop`; send the results to `out`."""
    rng = random.Random(1000 + worker)
    conns = [_Conn(port) for _ in slots]
    sel = selectors.DefaultSelector()
    for i, conn in enumerate(conns):
        sel.register(conn.sock, selectors.EVENT_READ, i)
    counts = [0] * len(conns)  # requests sent per connection
    latencies, errors, size = [], [], 0
    index = [0]

    def next_target():
        if callable(targets):
            return targets(rng)
        # A list: the workers take its items in turn.
        k = index[0]
        index[0] += 1
        return targets[(worker + k * workers) % len(targets)]

    def due_of(i: int, now: float) -> float:
        if rate is None:
            return max(now, start)
        return start + (counts[i] * total_slots + slots[i]) / rate

    finished = [False] * len(conns)
    while not all(finished):
        now = time.perf_counter()
        wait = 0.05
        for i, conn in enumerate(conns):
            if conn.busy or finished[i]:
                continue
            due = due_of(i, now)
            if due >= stop:
                finished[i] = True
                continue
            if due <= now:
                conn.due = due
                conn.path, payload = _request_bytes(port, next_target(), headers)
                conn.send(payload)
                counts[i] += 1
            else:
                wait = min(wait, due - now)
        if all(finished):
            break
        for key, _ in sel.select(max(0.0, wait)):
            i = key.data
            conn = conns[i]
            done = conn.read()
            if done is None:
                continue
            status, length, close = done
            latencies.append((time.perf_counter() - conn.due) * 1000)
            size = length
            if status not in (200, 304):
                errors.append(f"{conn.path}: {status}")
            if close:
                sel.unregister(conn.sock)
                conn.open()
                sel.register(conn.sock, selectors.EVENT_READ, i)
    for conn in conns:
        conn.sock.close()
    out.send((latencies, errors, size))
    out.close()


def drive(
    port: int,
    targets,
    seconds: float,
    clients: int,
    headers: dict | None = None,
    rate: float | None = None,
    processes: int | None = None,
) -> Load:
    """Run `clients` keep-alive connections against 127.0.0.1:`port` for `seconds`.

    `targets` is a function of a random.Random returning a path (or (path, headers)), or a list
    of them taken in turn. Without `rate` each connection sends its next request when the last is
    answered (throughput); with `rate` the connections together offer `rate` requests/s on a fixed
    schedule and latencies count from the due times. The connections are spread over `processes`
    worker processes (default: as many as cores, at most one per connection).
    """
    processes = max(1, min(clients, processes or os.cpu_count() or 1))
    ctx = multiprocessing.get_context("fork")
    start = time.perf_counter() + 0.2  # every worker connected before the first request is due
    stop = start + seconds
    workers, pipes = [], []
    for p in range(processes):
        slots = list(range(p, clients, processes))
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(port, targets, headers, start, stop, rate, slots, clients, p, processes, writer),
        )
        proc.start()
        writer.close()
        workers.append(proc)
        pipes.append(reader)
    load = Load(rate=0.0)
    for reader in pipes:
        latencies, errors, size = reader.recv()
        load.latencies += latencies
        load.errors += errors
        load.size = size or load.size
    for proc in workers:
        proc.join()
    load.rate = len(load.latencies) / max(1e-9, time.perf_counter() - start)
    return load


def sequential(port: int, targets: list, headers: dict | None = None) -> list[tuple[float, int, int]]:
    """Send `targets` one after another on one keep-alive connection; return (ms, status, bytes) of each."""
    conn = _Conn(port)
    results = []
    try:
        for target in targets:
            _, payload = _request_bytes(port, target, headers)
            t0 = time.perf_counter()
            conn.send(payload)
            conn.sock.setblocking(True)
            done = None
            while done is None:
                done = conn.read()
            conn.sock.setblocking(False)
            results.append(((time.perf_counter() - t0) * 1000, done[0], done[1]))
            if done[2]:
                conn.open()
    finally:
        conn.sock.close()
    return results


def sign_in(port: int, name: str, password: str, timeout: float = 60) -> dict:
    """Sign `name` in through gridkit's login form; return the request headers that carry the session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = f"name={name}&password={password}&csrf_token={token}"
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        raise SystemExit(f"{name} could not sign in ({response.status})")
    conn.close()
    return {"Cookie": response.getheader("Set-Cookie").split(";")[0]}
