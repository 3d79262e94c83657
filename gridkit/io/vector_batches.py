"""Read a Shapefile, GeoPackage or GeoJSON layer in batches of features: memory flat in the number of features.

`open_vector_batches` applies the rules of `gridkit.io.vector.read_vector_collecting` (layer, text
decoding, CRS, densifying, repairs, the China check) to one batch at a time: pyogrio reads
`batch_size` features (`skip_features` / `max_features`), they are checked and handed out, and the
next batch is read only when the caller asks. Subject imports stream a layer this way into their
staging table (gridkit.io.tables.open_table).

What differs from reading the file whole, and why it is still the same answer for a good file:
- The text encoding is detected per batch (UTF-8, else GB18030, unless `.cpg` or `encoding` says);
  batches with non-ASCII text that decode with different encodings are a `mixed_encoding` problem.
- File-level notes (encoding, Z dropped, densified …) are given once; counts in them add up.
- The share of features outside China that makes "the CRS is wrong" one file-level problem is
  judged per batch (a wrong CRS puts every batch outside).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pyogrio

from gridkit.io.archive import _located
from gridkit.io.problems import problem
from gridkit.io.textcodec import _RAW_GDAL, _cpg_of, _decode_text
from gridkit.io.vector import (
    MAX_VERTICES,
    VectorRead,
    VectorReadError,
    _codes,
    _geometries,
    _has_crs_member,
    _layer_info,
    _read_raw,
    _source_crs,
)
from gridkit.messages import Message, render
from gridkit.rules import SRID

__all__ = ["VECTOR_BATCH", "VectorBatches", "open_vector_batches"]

# Features read from the file at a time.
VECTOR_BATCH = 50_000


class VectorBatches:
    """A layer opened for reading in batches: `source`, `fields` (decoded, known after the first batch), `notes`
    (file-level ones merged), `features` (how many the layer holds) and `reads` (batches read so far).

    Iterating yields (VectorRead, problems) per batch, as `read_vector_collecting` returns for a whole
    file. The first batch is read on opening (its text gives the field names). Close it (or iterate to
    the end) to release the file (and a .zip's unpacked folder).
    """

    def __init__(
        self,
        path,
        *,
        layer,
        encoding,
        src_crs,
        target_srid,
        multipart,
        code_field,
        max_vertices,
        size,
        city=None,
        personal: bool = False,
    ):
        self.path = Path(path)
        self.encoding, self.target_srid, self.multipart = encoding, target_srid, multipart
        self.code_field, self.max_vertices, self.batch_size = code_field, max_vertices, size
        self.city = city  # the extent of the city's admin units, for the advice to coordinates in another CRS
        self.source: dict = {"path": str(self.path), "display": self.path.name or str(self.path)}
        if personal:  # people's homes (residents): the problems name no point exactly (gridkit.pii.public_extent)
            self.source["personal"] = True
        self.notes: list[dict] = []
        self.reads = 0
        self._codec_seen: str | None = None
        self._stack = ExitStack()
        try:
            self.file_path, self.gdal_layer = self._stack.enter_context(_located(self.path, layer, self.source))
            info = _layer_info(self.file_path, self.gdal_layer, self.source)
            self.features = info["features"]
            if self.features < 0:  # a driver that does not know without counting
                self.features = pyogrio.read_info(
                    self.file_path, layer=self.source["layer"], encoding=_RAW_GDAL, force_feature_count=True
                )["features"]
            self.cpg = _cpg_of(self.file_path) if self.source["driver"] == "ESRI Shapefile" else None
            geojson_default = self.source["driver"] == "GeoJSON" and not _has_crs_member(self.file_path)
            self._first = self._read(0)
            try:
                self.crs, self.gcj02 = _source_crs(info, src_crs, self.source, self.notes, geojson_default, city)
            except VectorReadError as exc:  # no CRS: report the first batch's text problems too
                exc.problems, exc.notes, exc.source = self._first[1] + exc.problems, self.notes, self.source
                raise
        except BaseException:
            self._stack.close()
            raise
        self.source["features"] = self.features

    @property
    def fields(self) -> list[str]:
        return list(self.source.get("fields", []))

    def close(self) -> None:
        """Release the file (and the unpacked folder of a .zip)."""
        self._stack.close()

    def __iter__(self) -> Iterator[tuple[VectorRead, list[dict]]]:
        try:
            first, self._first = self._first, None
            if first is not None:
                yield self._checked(*first)
            for start in range(self.batch_size, self.features, self.batch_size):
                yield self._checked(*self._read(start))
        finally:
            self.close()

    def _read(self, start: int):
        """Read and decode the batch of features from `start`; return (frame, problems)."""
        notes: list[dict] = []
        problems: list[dict] = []
        raw = _read_raw(self.file_path, self.gdal_layer, self.source, notes, skip=start, limit=self.batch_size)
        self.reads += 1
        frame = _decode_text(raw, self.encoding, self.cpg, self.source, notes, problems)
        self._check_codec(raw, problems)
        self._merge(notes)
        return frame, problems

    def _check_codec(self, raw, problems: list) -> None:
        """Record mixed_encoding when this batch's text decoded with another encoding than an earlier batch's."""
        codec = self.source.get("encoding")
        if codec is None or not _non_ascii(raw):
            return
        if self._codec_seen is None:
            self._codec_seen = codec
        elif codec != self._codec_seen:
            problems.append(
                problem(
                    "mixed_encoding",
                    Message(
                        "imports.vector_mixed_encoding",
                        file=self.source["display"],
                        index=int(raw.index[0]),
                        first=self._codec_seen,
                        later=codec,
                    ),
                )
            )

    def _checked(self, frame, problems: list) -> tuple[VectorRead, list[dict]]:
        notes: list[dict] = []
        codes = _codes(frame, self.code_field)
        for found in problems:  # text problems were found before the codes could be read
            if found["index"] is not None and found["code"] is None:
                found["code"] = codes.get(found["index"])
        gdf = _geometries(
            frame,
            self.crs,
            self.gcj02,
            self.target_srid,
            self.multipart,
            codes,
            self.source,
            notes,
            problems,
            max_vertices=self.max_vertices,
            city=self.city,
        )
        self._merge(notes)
        return VectorRead(gdf=gdf, notes=self.notes, source=self.source), problems

    def _merge(self, notes: list[dict]) -> None:
        """Add a batch's notes: one per kind for file-level notes (their counts summed), all feature notes."""
        for note in notes:
            if note["index"] is not None:
                self.notes.append(note)
                continue
            same = next((n for n in self.notes if n["index"] is None and n["kind"] == note["kind"]), None)
            if same is None:
                self.notes.append(note)
            elif note.get("key") and same.get("key") == note["key"] and "count" in note.get("params", {}):
                same["params"]["count"] += note["params"]["count"]
                same["message"] = render(same["key"], "en", **same["params"])


def _non_ascii(raw) -> bool:
    geometry = raw.geometry.name
    for name in raw.columns:
        if name == geometry:
            continue
        if not name.isascii():
            return True
        for value in raw[name]:
            if isinstance(value, str) and not value.isascii():
                return True
    return False


def open_vector_batches(
    path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    target_srid: int = SRID,
    multipart: str | None = None,
    code_field: str | None = None,
    max_vertices: int | None = MAX_VERTICES,
    batch_size: int | None = None,
    city: tuple | None = None,
    personal: bool = False,
) -> VectorBatches:
    """Open the layer at `path` for reading `batch_size` features at a time (see the module docs).

    File-level problems (no such file, no CRS, unsafe zip …) raise VectorReadError at once.
    """
    return VectorBatches(
        path,
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        target_srid=target_srid,
        multipart=multipart,
        code_field=code_field,
        max_vertices=max_vertices,
        size=batch_size or VECTOR_BATCH,
        city=city,
        personal=personal,
    )
