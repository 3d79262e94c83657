"""The writing half of a large GDAL export, run as a child process by `gridkit.io.export_child`.

    python -P gridkit/io/export_process.py '{"cleanup": ["/out/.x.part1.gpkg"]}'

Run as a script, not imported through the `gridkit` package: it needs only pyarrow and pyogrio,
so it starts in a fraction of a second. On its standard input come, per layer, one JSON line
(where and how to write; `config`: GDAL configuration options set before the write) followed by
an Arrow IPC stream of record batches, and at the end the line `{"end": true}`. After each layer
it answers one JSON line on its standard output (`{"ok": true}` or `{"error": "..."}`).

The parent reads PostGIS while this process writes: pyogrio holds the GIL while GDAL writes a
batch, so in one process reading and writing take turns; here they use a core each.

Anything but a complete conversation ending in `{"end": true}` (a GDAL error, the parent killed
or gone, a broken stream) removes every path named in `cleanup`, so no half-written file stays.
Ctrl+C is left to the parent (it kills this process and cleans up too).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import warnings

OPTIONAL = ("geopandas", "pandas", "shapely", "pyproj")


def _remove(paths) -> None:
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _write_layer(source, header: dict) -> None:
    import pyarrow as pa
    import pyogrio

    reader = pa.ipc.open_stream(source)
    pyogrio.set_gdal_config_options(header.get("config", {}))
    pyogrio.write_arrow(
        reader,
        header["path"],
        layer=header["layer"],
        driver=header["driver"],
        geometry_name="geometry",
        geometry_type=header["geometry_type"],
        crs=header["crs"],
        **header.get("options", {}),
    )


def main(argv: list[str]) -> int:
    """Write the layers the parent sends; return 0 when it said `end`, 1 otherwise (files removed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # pyogrio looks for these optional packages when imported; writing Arrow needs none of them,
    # and importing them would take most of this process's start.
    for name in OPTIONAL:
        sys.modules.setdefault(name, None)
    warnings.simplefilter("ignore")  # GDAL's notes (laundered field names) are the parent's business
    cleanup = json.loads(argv[1]).get("cleanup", []) if len(argv) > 1 else []
    source = sys.stdin.buffer
    finished = False
    try:
        while True:
            line = source.readline()
            if not line:
                return 1  # the parent is gone before saying end
            header = json.loads(line)
            if header.get("end"):
                finished = True
                return 0
            _write_layer(source, header)
            _answer({"ok": True, "layer": header["layer"]})
    except BaseException as exc:  # reported to the parent, which raises its own error
        try:
            _answer({"error": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass
        return 1
    finally:
        if not finished:
            _remove(cleanup)


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is closed (or removed) by now: skip the interpreter's teardown of pyarrow and GDAL
    # (tens of milliseconds the parent would wait for).
    os._exit(status)
