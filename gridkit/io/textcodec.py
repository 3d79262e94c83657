"""Decoding a layer's attribute text (field names and values) strictly, from its raw bytes.

Moved out of `gridkit.io.vector`, whose docstring describes the behaviour: GDAL hands back the
raw bytes decoded as Latin-1, and they are decoded here with the forced encoding, the `.cpg`
encoding, else UTF-8, else GB18030. Text that does not decode is a problem with its feature and field.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gridkit.io.problems import _LIST_AT_MOST, _fatal, problem
from gridkit.messages import Message

if TYPE_CHECKING:  # the vector stack is loaded by the readers of vector files, never for tables
    import geopandas as gpd
    import pandas as pd

# Encodings a .cpg may name in ways Python does not know; GBK/GB2312 are read as GB18030, their superset.
_CPG_ALIASES = {
    "65001": "utf-8",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "936": "gb18030",
    "cp936": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "54936": "gb18030",
    "950": "big5",
    "88591": "latin-1",
    "8859-1": "latin-1",
    "iso-8859-1": "latin-1",
}

# The bytes a DBF (shapefile) field name holds; a name the cut made equal to another ends in "_1", "_2" ….
DBF_NAME_BYTES = 10
_NUMBERED_NAME = re.compile(rb"_[0-9]+$")

# Latin-1 is bijective: every byte ↔ one character, so the raw bytes can be recovered. For
# shapefiles pyogrio hands the name to GDAL (iconv), which knows "ISO-8859-1" but not "latin-1".
_RAW = "latin-1"
_RAW_GDAL = "ISO-8859-1"


def _cpg_of(shp: Path) -> str | None:
    for sibling in shp.parent.iterdir():
        if sibling.stem == shp.stem and sibling.suffix.lower() == ".cpg":
            return sibling.read_bytes().decode("ascii", "replace").strip()
    return None


def _codec(name: str) -> str | None:
    key = name.strip().lower()
    key = re.sub(r"^(ansi|oem)\s*", "", key)
    if key in _CPG_ALIASES:
        return _CPG_ALIASES[key]
    if key.isdigit():
        key = f"cp{key}"
    try:
        return codecs.lookup(key).name
    except LookupError:
        return None


def cut_field_name(raw: bytes, codec: str) -> str | None:
    """Return a DBF field name that was cut inside a multibyte character, decoded without that broken
    character; None when `raw` is not such a name.

    A DBF field name holds DBF_NAME_BYTES bytes: GDAL and ArcGIS cut a longer name there, inside a
    character when the name is UTF-8 Chinese (3 bytes a character), and number the names the cut
    made equal with "_1", "_2" … after the broken character.
    """
    if len(raw) > DBF_NAME_BYTES:
        return None
    numbered = _NUMBERED_NAME.search(raw)
    head, tail = (raw[: numbered.start()], raw[numbered.start() :]) if numbered else (raw, b"")
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if not decoder.getstate()[0]:  # nothing left over: not a cut character
        return None
    return text + tail.decode("ascii")


def _failures(raw_frame: pd.DataFrame, columns: list, text_columns: list, codec: str, dbf: bool) -> list[tuple]:
    """Return (index, field, bytes, position) for every name or value that does not decode with codec.

    In a DBF (`dbf`), a field name cut inside a character (cut_field_name) is no failure.
    """
    failed = []
    for name in columns:
        if not name.isascii():
            try:
                name.encode(_RAW).decode(codec)
            except UnicodeDecodeError as exc:
                if not (dbf and cut_field_name(name.encode(_RAW), codec)):
                    failed.append((None, name, name.encode(_RAW), exc.start))
    for name in text_columns:
        for index, value in raw_frame[name].items():
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode(_RAW).decode(codec)
                except UnicodeDecodeError as exc:
                    failed.append((index, name, value.encode(_RAW), exc.start))
    return failed


def _decode_text(
    raw_frame: gpd.GeoDataFrame, forced: str | None, cpg: str | None, source: dict, notes: list, problems: list
) -> gpd.GeoDataFrame:
    import pandas as pd  # here: only vector files, already read by pandas, come through

    display = source["display"]
    geometry = raw_frame.geometry.name
    columns = [c for c in raw_frame.columns if c != geometry]
    # pandas 3 reads text as the "str" dtype, older pandas as object.
    text_columns = [
        c for c in columns if pd.api.types.is_object_dtype(raw_frame[c]) or pd.api.types.is_string_dtype(raw_frame[c])
    ]
    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(source, "unknown_encoding", "unknown_encoding", encoding=forced)
        candidates, origin = [codec], "given"
    elif cpg and _codec(cpg):
        candidates, origin = [_codec(cpg)], f".cpg ({cpg})"
    else:
        if cpg:
            notes.append(problem("encoding", Message("geometry.vector.unknown_cpg", file=display, cpg=cpg)))
        candidates, origin = ["utf-8", "gb18030"], "detected"
    dbf = source.get("driver") == "ESRI Shapefile"
    failures = {}
    for codec in candidates:
        failures[codec] = _failures(raw_frame, columns, text_columns, codec, dbf)
        if not failures[codec]:
            break
    else:
        problems.extend(_encoding_problems(display, candidates, failures, origin))
        source.update(encoding=None, encoding_source=origin)
        codec = None
    if codec is not None and origin.startswith(".cpg") and _single_byte(codec):
        # Every byte decodes in a one-byte encoding: a .cpg saying ISO-8859-1 or 1252 over Chinese text
        # (a common export default) would store every name garbled without a single failure.
        misread = _reads_as_chinese(raw_frame, columns, text_columns)
        if misread is not None:
            real, index, name, value = misread
            problems.append(
                problem(
                    "cpg_mismatch",
                    Message(
                        "geometry.vector.cpg_mismatch",
                        file=display,
                        where=Message("geometry.vector.where_value", index=index, field=_printable(name))
                        if index is not None
                        else Message("geometry.vector.where_name", field=_printable(name)),
                        cpg=cpg,
                        real=real,
                        text=value.encode(_RAW).decode(real),
                        garbled=value.encode(_RAW).decode(codec, "replace"),
                    ),
                    index=index,
                    field=_printable(name),
                )
            )
            source.update(encoding=None, encoding_source=origin)
            codec = None
    if codec is not None:
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source=origin)
        if origin == "detected" and codec != "utf-8":
            notes.append(problem("encoding", Message("geometry.vector.decoded_gb18030", file=display)))
    # Undecodable text has been reported and the read will be refused; decode it as well as
    # possible meanwhile so that the remaining checks (fields, codes) still run.
    decode = (lambda s: s.encode(_RAW).decode(codec)) if codec else _printable
    frame = raw_frame.copy()
    for name in text_columns:
        frame[name] = [decode(v) if isinstance(v, str) and not v.isascii() else v for v in frame[name]]
    renamed = {
        c: _field_name(c, codec, dbf, display, notes) if codec else _printable(c) for c in columns if not c.isascii()
    }
    if renamed:
        frame = frame.rename(columns=renamed)
    source["fields"] = [renamed.get(c, c) for c in columns]
    return frame


def _field_name(name: str, codec: str, dbf: bool, display: str, notes: list) -> str:
    """Return a raw field name decoded; one cut inside a character (cut_field_name) without it, and noted."""
    raw = name.encode(_RAW)
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        cut = cut_field_name(raw, codec) if dbf else None
        if cut is None:
            raise
    notes.append(
        problem(
            "field_name_cut",
            Message("geometry.vector.field_name_cut", file=display, field=cut, limit=DBF_NAME_BYTES),
            field=cut,
        )
    )
    return cut


def _single_byte(codec: str) -> bool:
    """True when `codec` gives one character per byte (Latin-1, cp1252 …): it decodes any text, right or not."""
    if codecs.lookup(codec).name.startswith("utf"):
        return False
    return len(b"\xc4\xe3\xba\xc3".decode(codec, "replace")) == 4


def _chinese(text: str) -> bool:
    """True when every non-ASCII character of `text` is CJK or CJK punctuation/full-width, and there is one."""
    wide = [c for c in text if not c.isascii()]
    return bool(wide) and all("\u2e80" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in wide)


def _reads_as_chinese(raw_frame, columns: list, text_columns: list) -> tuple | None:
    """Return (codec, index, field, raw value) of the first non-ASCII text when all of it reads as Chinese in
    UTF-8, or else all of it in GB18030; None otherwise (or when there is no such text)."""
    values = [(None, name, name) for name in columns if not name.isascii()]
    for name in text_columns:
        values.extend(
            (index, name, value)
            for index, value in raw_frame[name].items()
            if isinstance(value, str) and not value.isascii()
        )
    if not values:
        return None
    for real in ("utf-8", "gb18030"):
        try:
            if all(_chinese(value.encode(_RAW).decode(real)) for _, _, value in values):
                index, name, value = values[0]
                return real.upper(), index, name, value
        except UnicodeDecodeError:
            continue
    return None


def _encoding_problems(display: str, candidates: list[str], failures: dict, origin: str) -> list[dict]:
    def one(index, name, data, pos, said):
        shown = _printable(name)
        where = (
            Message("geometry.vector.where_value", index=index, field=shown)
            if index is not None
            else Message("geometry.vector.where_name", field=shown)
        )
        return problem(
            "undecodable_text",
            Message(
                "geometry.vector.undecodable",
                file=display,
                where=where,
                said=said,
                bytes=data[pos : pos + 4].hex(" "),
                pos=pos,
                advice=Message(f"geometry.vector.{advice}"),
            ),
            index=index,
            field=shown,
        )

    if origin == "given":
        advice = "advice_given"
        said = Message("geometry.vector.said_given", encoding=candidates[0])
        return [one(*f, said) for f in failures[candidates[0]]]
    if origin.startswith(".cpg"):
        advice = "advice_cpg"
        said = Message("geometry.vector.said_cpg", encoding=candidates[0], origin=origin)
        return [one(*f, said) for f in failures[candidates[0]]]
    advice = "advice_detected"
    utf8 = {(i, n): (i, n, d, p) for i, n, d, p in failures["utf-8"]}
    both = [f for f in failures["gb18030"] if (f[0], f[1]) in utf8]
    if both:
        return [one(*f, "UTF-8 or GB18030") for f in both]
    examples_utf8 = ", ".join(str(i) for i, *_ in failures["utf-8"][:_LIST_AT_MOST])
    examples_gb = ", ".join(str(i) for i, *_ in failures["gb18030"][:_LIST_AT_MOST])
    return [
        problem(
            "mixed_encoding",
            Message("geometry.vector.mixed_encoding", file=display, utf8=examples_utf8, gb=examples_gb),
        )
    ]


def _printable(name: str) -> str:
    """Return a raw (Latin-1 decoded) field name as readable as possible, for messages only."""
    raw = name.encode(_RAW)
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            pass
    return raw.decode("utf-8", "replace")
