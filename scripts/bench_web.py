"""Benchmark: the web through a real server on loopback with concurrent clients.

Targets (issue 11): the home page ≥ 200 requests/s on 2 cores; /api/whois p95 ≤ 10 ms at 300
requests/s. Baselines from the same run: the home page with its counts recomputed on every
request (the app before counts were kept), and `whois` of the domain called in process.

Builds the 10,000-cell city of bench_workgrid.py (with --residents residents) in a throwaway
private cluster under /tmp (committed there: the server reads it from another process), serves
it with waitress (8 threads, as `gridkit serve`) in a subprocess, and drives it with client
threads. Usage: .venv/bin/python scripts/bench_web.py [--residents N] [--seconds S] [--clients C]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.grids.work import responsibility_at  # noqa: E402

SERVER = """
import sys
from waitress import serve
from gridkit.config import Settings
from web import create_app, summary
if sys.argv[2] == "uncached":
    summary.STAMP_AGE = summary.MAX_AGE = 0.0
serve(create_app(Settings.from_env()), host="127.0.0.1", port=int(sys.argv[1]), threads=8, _quiet=True)
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _workgrid_bench():
    spec = importlib.util.spec_from_file_location("bench_workgrid", ROOT / "scripts" / "bench_workgrid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(url: str, mode: str):
    port = _free_port()
    env = dict(os.environ, GRIDKIT_DATABASE_URL=url, GRIDKIT_HOME=str(Path("/tmp") / f"gridkit-bench-web-{port}"))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), mode], env=env, cwd=ROOT)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _drive(port: int, paths, seconds: float, clients: int) -> tuple[float, list[float], int]:
    """Return (requests/s, latencies in ms, bytes of the last answer) of `clients` threads for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    size = [0]
    stop = time.perf_counter() + seconds

    def client(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            path = paths(rng)
            t0 = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            size[0] = len(body)
            if response.status != 200:
                errors.append(f"{path}: {response.status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"errors: {errors[:5]}")
    return len(latencies) / (time.perf_counter() - start), latencies, size[0]


def _p(values, q):
    return statistics.quantiles(values, n=100)[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=5_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if os.environ.get("GRIDKIT_DATABASE_URL"):
        raise SystemExit("bench_web commits its city: run it without GRIDKIT_DATABASE_URL (a throwaway cluster)")
    build = _workgrid_bench().build
    span = 0.1  # the city: 114.0..114.1, 22.5..22.6
    rows = []
    with db.bench_database(5498, "gridkit_bench_web") as (url, where):
        log(f"database: {where}")
        engine = db.make_engine(url)
        with Session(engine) as session, session.begin():
            build(session, args.residents)
        with Session(engine) as session:
            t0 = time.perf_counter()
            for _ in range(200):
                responsibility_at(session, 114.0 + random.random() * span, 22.5 + random.random() * span)
            in_process_ms = (time.perf_counter() - t0) / 200 * 1000
        engine.dispose()
        log("built the city; serving")

        def whois(rng):
            return f"/api/whois?lon={114.0 + rng.random() * span:.6f}&lat={22.5 + rng.random() * span:.6f}"

        for mode in ("uncached", "kept"):
            proc, port = _start(url, mode)
            try:
                _drive(port, lambda rng: "/", 1, 2)  # warm up
                rate, lat, size = _drive(port, lambda rng: "/", args.seconds, args.clients)
                rows.append((f"home page, counts {mode}", rate, _p(lat, 50), _p(lat, 95), size))
                if mode == "kept":
                    rate, lat, size = _drive(port, whois, args.seconds, args.clients)
                    rows.append(("/api/whois (random points)", rate, _p(lat, 50), _p(lat, 95), size))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    print()
    print(f"{'benchmark':40} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>8}")
    for label, rate, p50, p95, size in rows:
        print(f"{label:40} {rate:8.0f} {p50:8.2f} {p95:8.2f} {size:8}")
    print(f"{'whois in process (baseline)':40} {'':>8} {in_process_ms:8.2f}")
    print()
    home, baseline, whois_row = rows[1][1], rows[0][1], rows[2]
    print(
        f"home_rps={home:.0f} (target ≥ 200) ratio_vs_uncached={home / baseline:.1f} "
        f"whois_p95_ms={whois_row[3]:.2f} at {whois_row[1]:.0f} req/s (target ≤ 10 at 300)"
    )


if __name__ == "__main__":
    main()
