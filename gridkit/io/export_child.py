"""A child process that writes the GDAL layers of a large export while this process reads PostGIS.

    process = WriterProcess(display_path, cleanup=[tmp])
    process.write_layer(header, schema, batches)   # once per layer
    process.finish()                               # or process.kill() on any failure

pyogrio holds the GIL while GDAL writes a batch, so in one process the COPY read and the GDAL
write take turns. Here the reading stays in this process (inside the caller's transaction and
snapshot: the child never touches the database) and the batches travel to the child
(`export_process.py`) as an Arrow IPC stream over a pipe: two cores work at once. A thread of
this process writes the stream, so the next block of rows is parsed while the child reads.

Failures: a GDAL error in the child comes back as `export.write_failed` naming the file; any
failure here (an error while reading, Ctrl+C) kills the child; the child removes its half-written
files itself when the conversation does not end normally (the parent killed included).
"""

from __future__ import annotations

import fcntl
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa

from gridkit.errors import ValidationError

SCRIPT = Path(__file__).with_name("export_process.py")
F_SETPIPE_SZ = 1031  # Linux: a larger pipe lets the reader run ahead of the writer a little
PIPE_BYTES = 1 << 20
SEND_AHEAD = 2  # batches waiting for the pipe: the next block is parsed while the child reads


class _Sender:
    """A thread writing record batches to an Arrow IPC stream: a batch blocks on the full pipe
    there, not in the thread that parses the next one (else the child, having drained the pipe,
    waits for that parse)."""

    def __init__(self, stream):
        self.stream = stream
        self.queue: queue.Queue = queue.Queue(maxsize=SEND_AHEAD)
        self.error: OSError | None = None  # after which the queue is only drained
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.stream.write_batch(batch)
                except Exception as exc:  # a closed pipe; a file closed by kill() is a ValueError
                    self.error = exc if isinstance(exc, OSError) else OSError(str(exc))

    def put(self, batch) -> None:
        """Queue `batch`; raise the OSError of an earlier write (the child stopped reading)."""
        while self.error is None:
            try:
                self.queue.put(batch, timeout=0.05)
                return
            except queue.Full:
                continue
        raise self.error

    def close(self) -> None:
        """Wait until every queued batch is written; raise the OSError of a failed write."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def close_quietly(self) -> None:
        """End the thread after a failure elsewhere (the child is gone: writes fail at once)."""
        if self.thread.is_alive():
            self.error = self.error or OSError("abandoned")
            while True:
                try:
                    self.queue.put_nowait(None)
                    break
                except queue.Full:
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass
            self.thread.join()


class WriterProcess:
    """The child that writes layers with GDAL; `path` is the output named in error messages."""

    def __init__(self, path: Path, cleanup: list[Path]):
        self.path = path
        # -P: the script's folder (gridkit/io) stays off sys.path; the child imports pyarrow and
        # pyogrio only.
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(SCRIPT), json.dumps({"cleanup": [str(p) for p in cleanup]})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means less read-ahead

    def write_layer(self, header: dict, schema: pa.Schema, batches) -> None:
        """Send one layer: `header` (path, layer, driver, geometry_type, crs, options) and the
        record batches of `batches` (cast to `schema`); return when the child has written it."""
        sink = self.proc.stdin
        try:
            sink.write((json.dumps(header) + "\n").encode())
            stream = pa.ipc.new_stream(sink, schema)
        except OSError as exc:
            raise self._failure(exc) from None
        sender = _Sender(stream)
        try:
            for batch in batches:
                try:
                    sender.put(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                except OSError as exc:
                    # The child stopped reading: it failed and says why (or it was killed).
                    raise self._failure(exc) from None
            try:
                sender.close()
            except OSError as exc:
                raise self._failure(exc) from None
        except BaseException:
            # No end-of-stream marker: the child must not take a cut stream for a whole layer.
            # Killed, it stops reading: a write blocked on the pipe fails and the sender ends.
            self.kill()
            sender.close_quietly()
            raise
        try:
            stream.close()
            sink.flush()
        except OSError as exc:
            raise self._failure(exc) from None
        answer = self._answer()
        if "error" in answer:
            raise self._failure(answer["error"])

    def finish(self) -> None:
        """Tell the child every layer is sent and wait for it to end."""
        self.end()
        self.wait()

    def end(self) -> None:
        """Tell the child every layer is sent: its files are complete and stay (it has answered
        for each layer), so they may be read while it exits."""
        try:
            self.proc.stdin.write(b'{"end": true}\n')
            self.proc.stdin.close()
        except OSError as exc:
            raise self._failure(exc) from None

    def wait(self) -> None:
        """Wait for the child to exit (after `end`); raise if it did not exit cleanly."""
        if self.proc.wait() != 0:
            raise self._failure(f"exit status {self.proc.returncode}")

    def kill(self) -> None:
        """End the child now if it still runs (it removes its files when killed by EOF; the caller
        removes them too, for a SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"error": f"the writing process ended (status {self.proc.wait()})"}

    def _failure(self, reason) -> ValidationError:
        if not isinstance(reason, str):
            answer = self._answer() if self.proc.stdout and not self.proc.stdout.closed else {}
            reason = answer.get("error") or str(reason)
        self.kill()
        return ValidationError("export.write_failed", path=str(self.path), reason=reason)
