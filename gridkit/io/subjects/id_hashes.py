"""The keyed hashes of citizen IDs for the residents import (gridkit.io.subjects.residents), computed in a worker
process while the import checks the rest of the chunk.

Hashing costs ~0.75 µs of Python per ID (hashlib releases the GIL only for messages of 2 KB or more, so a thread
would not run beside the import's own work): for a large chunk the IDs go to a worker process (this file run as a
script: the standard library alone, started in ~20 ms) through a pipe, and the import collects the hashes when it
needs them. The key goes through the pipe too: never in a command line, the environment or a file. The worker
ignores Ctrl+C (the import's process handles it and ends the worker) and exits when its input closes.

(Run as a script, this file imports nothing of gridkit: the worker starts without the import's packages.)
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys

# Bytes of one citizen ID.
ID_BYTES = 18
# From this many IDs in one request the hashes are computed by the worker (below, here: no process started).
WORKER_MIN_IDS = 20_000


def hmac_hex(key: bytes, blob: bytes) -> bytes:
    """Return the hex HMAC-SHA256 under `key` of each 18-byte ID in `blob`, 64 ASCII bytes each, end to end.

    The same value as gridkit.pii.hash_citizen_id; the key's inner and outer states are computed once
    (two SHA-256 blocks per ID instead of four).
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    digests = []
    append = digests.append
    for start in range(0, len(blob), ID_BYTES):
        inner = inner_copy()
        inner.update(blob[start : start + ID_BYTES])
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.digest())
    return b"".join(digests).hex().encode("ascii")


class IdHasher:
    """Hashes of citizen IDs under one key: `submit` a request, call what it returns for the hashes (one request
    at a time). Large requests go to a worker process, started at the first one; `close` ends it."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._worker: subprocess.Popen | None = None

    def submit(self, blob: bytes):
        """Start hashing the IDs of `blob` (18 bytes each); return a function returning their hex hashes."""
        n = len(blob) // ID_BYTES
        if n < WORKER_MIN_IDS:
            hashes = hmac_hex(self.key, blob)
            return lambda: hashes
        worker = self._started()
        worker.stdin.write(n.to_bytes(4, "big") + blob)
        worker.stdin.flush()

        def hashes() -> bytes:
            got = worker.stdout.read(64 * n)
            if len(got) != 64 * n:
                raise RuntimeError(f"the ID hashing worker stopped (exit status {worker.poll()})")
            return got

        return hashes

    def _started(self) -> subprocess.Popen:
        if self._worker is None:
            self._worker = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._worker.stdin.write(len(self.key).to_bytes(4, "big") + self.key)
        return self._worker

    def close(self) -> None:
        """End the worker, if one was started."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.kill()  # whatever it was doing: its hashes are not wanted any more
        worker.wait()
        worker.stdin.close()
        worker.stdout.close()

    def __enter__(self) -> IdHasher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve() -> None:
    """The worker: read the key, then requests (a count, then the IDs); write each request's hex hashes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    read, write = sys.stdin.buffer.read, sys.stdout.buffer

    def exactly(n: int) -> bytes:
        got = read(n)
        if len(got) != n:  # the import closed the pipe: its end
            sys.exit(0)
        return got

    key = exactly(int.from_bytes(exactly(4), "big"))
    while True:
        n = int.from_bytes(exactly(4), "big")
        write.write(hmac_hex(key, exactly(ID_BYTES * n)))
        write.flush()


if __name__ == "__main__":
    _serve()
