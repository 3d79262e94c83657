"""The text of a CSV file: its encoding given, said by its byte order mark, or detected (UTF-16 without a byte
order mark, UTF-8, else GB18030), decoded strictly: lines that decode with none are problems naming the line, and a
file part UTF-8, part GBK is refused. Moved out of gridkit.io.csvtable, which streams the rows (see
gridkit.io.tables for the rules).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from gridkit.io.problems import problem
from gridkit.io.tables import _BLOCK, _BOMS, _fatal, at, place
from gridkit.io.textcodec import _codec
from gridkit.messages import Message

__all__: list[str] = []


def _ascii_compatible(codec: str) -> bool:
    try:
        return "a,\n".encode(codec) == b"a,\n"
    except (UnicodeError, LookupError):
        return False


def _bad_lines(data: bytes, codec: str) -> list[tuple[int, bytes, int]]:
    """Return (line number, line bytes, byte offset) of every line that does not decode with `codec`."""
    if not _ascii_compatible(codec):
        try:
            data.decode(codec)
            return []
        except UnicodeDecodeError as exc:
            line = data[: exc.start].decode(codec, "replace").count("\n") + 1
            return [(line, data[exc.start :], 0)]
    bad = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode(codec)
        except UnicodeDecodeError as exc:
            bad.append((number, line, exc.start))
    return bad


def _utf16_without_bom(start: bytes) -> str | None:
    """Return "utf-16-le" or "utf-16-be" when the file's first bytes are UTF-16 text without a byte order mark (what
    SQL Server's bcp and some case systems export), else None.

    Read as UTF-8, such text decodes without an error: every other byte a NUL, the header unreadable and each row
    refused for its NUL bytes. A NUL is in no CSV text; in UTF-16, ASCII characters (the header's names, digits,
    commas, line ends) have one in every pair, on the second byte in little-endian order, on the first in big-endian.
    """
    pairs = start[: len(start) // 2 * 2][:2048]
    if len(pairs) < 8:
        return None
    first, second = pairs[0::2], pairs[1::2]
    half = len(pairs) // 2
    # NULs on one side of the pairs, far fewer on the other: a Chinese character may have one too (一 is 4E 00).
    odd, even = second.count(0), first.count(0)
    if odd >= 0.2 * half and even * 4 <= odd:
        return "utf-16-le"
    if even >= 0.2 * half and odd * 4 <= even:
        return "utf-16-be"
    return None


def _decode_csv(data: bytes, forced: str | None, source: dict, notes: list, problems: list) -> str:
    """Return the whole file's text: the encoding forced, else its byte order mark's, else detected."""
    display = source["display"]
    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(source, "unknown_encoding", "unknown_encoding", encoding=forced)
        if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="given")
        said = Message("imports.said.given", encoding=forced)
        return _decode_as(data, codec, problems, display, said, Message("imports.advice.given"))
    for bom, codec in _BOMS:
        if data.startswith(bom):
            source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="byte order mark")
            said = Message("imports.said.bom", encoding=codec.upper())
            return _decode_as(data, codec, problems, display, said, Message("imports.advice.bom"))
    if (codec := _utf16_without_bom(data[:2048])) is not None:
        source.update(encoding=codec.upper(), encoding_source="detected")
        notes.append(problem("encoding", at(display, Message("imports.decoded_utf16", encoding=codec.upper()))))
        said = Message("imports.said.detected", encoding=codec.upper())
        return _decode_as(data, codec, problems, display, said, Message("imports.advice.given"))
    try:
        text = data.decode("utf-8")
        source.update(encoding="UTF-8", encoding_source="detected")
        return text
    except UnicodeDecodeError:
        return _decode_not_utf8(data, source, notes, problems)


def _decode_as(data: bytes, codec: str, problems: list, display: str, said: Message, advice: Message) -> str:
    """Return the text in `codec`; lines it cannot decode become problems and are decoded with replacements."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        _undecodable(problems, display, _bad_lines(data, codec), said, advice)
        return data.decode(codec, "replace")


def _undecodable(problems: list, display: str, lines, said: Message, advice: Message) -> None:
    for number, line, pos in lines:
        message = Message("imports.undecodable", said=said, bytes=line[pos : pos + 4].hex(" "), pos=pos, advice=advice)
        problems.append(problem("undecodable_text", at(place(display, "line", number), message), index=number))


def _decode_not_utf8(data: bytes, source: dict, notes: list, problems: list) -> str:
    """Return the text of a file that is not UTF-8 as a whole: GB18030, or refused (lines named) if neither."""
    display = source["display"]
    # Lines that are neither UTF-8 nor GB18030 are refused by number; then a file part UTF-8, part GBK;
    # else the whole file is GB18030.
    utf8_bad = _bad_lines(data, "utf-8")
    gb_bad = {number: (number, line, pos) for number, line, pos in _bad_lines(data, "gb18030")}
    both = [gb_bad[number] for number, _, _ in utf8_bad if number in gb_bad]
    mixed = _utf8_and_not(data)
    if not both and not mixed and not gb_bad:
        source.update(encoding="GB18030", encoding_source="detected")
        notes.append(problem("encoding", at(display, Message("imports.decoded_gb18030"))))
        return data.decode("gb18030")
    source.update(encoding=None, encoding_source="detected")
    if both:
        _undecodable(
            problems,
            display,
            both,
            Message("imports.said.neither"),
            Message("imports.advice.neither"),
        )
    else:
        utf8, other = mixed or ([n for n in gb_bad], [n for n, _, _ in utf8_bad])
        problems.append(
            problem(
                "mixed_encoding",
                Message("imports.mixed_encoding", file=display, utf8=_lines(utf8), other=_lines(other)),
            )
        )
    # The import is refused; decode each line as well as possible so the other checks still run.
    return "\n".join(_best_effort(line) for line in data.split(b"\n"))


def _utf8_and_not(data: bytes) -> tuple[list[int], list[int]] | None:
    """For a file that is not UTF-8 as a whole: the lines holding Chinese in UTF-8 and those not UTF-8, if both.

    GB18030 decodes UTF-8 Chinese without error (as mojibake), so a file that is part UTF-8, part
    GBK would otherwise import half of its names garbled. A GBK line with a Chinese character is
    practically never valid UTF-8 with a 3-byte character, which is what UTF-8 Chinese is.
    """
    utf8, other = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            other.append(number)
            continue
        if any(ord(c) >= 0x800 for c in decoded):
            utf8.append(number)
    return (utf8, other) if utf8 and other else None


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:20])) + (" …" if len(numbers) > 20 else "")


def _best_effort(line: bytes) -> str:
    for codec in ("utf-8", "gb18030"):
        try:
            return line.decode(codec)
        except UnicodeDecodeError:
            pass
    return line.decode("utf-8", "replace")


def _decodes(path: Path, codec: str) -> bool:
    """True when the whole file decodes with `codec` (read block by block: memory stays flat)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    try:
        with path.open("rb") as f:
            while block := f.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _mixed_lines(path: Path) -> bool:
    """True when a file that is not UTF-8 as a whole has lines of UTF-8 Chinese too (see _utf8_and_not)."""
    utf8 = other = False
    with path.open("rb") as f:
        for line in f:
            if line.isascii():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError:
                other = True
            else:
                utf8 = utf8 or any(ord(c) >= 0x800 for c in decoded)
            if utf8 and other:
                return True
    return False


def _streamable_codec(path: Path, forced: str | None, source: dict, notes: list) -> str | None:
    """Return the codec to stream the CSV with, the source's encoding set as `_decode_csv` sets it; None when
    the text does not decode cleanly (then the file is read whole, so that every bad line is named)."""
    with path.open("rb") as f:
        start = f.read(2048)
    if forced is not None:
        codec = _codec(forced)
        if codec is None:
            raise _fatal(source, "unknown_encoding", "unknown_encoding", encoding=forced)
        if codec == "utf-8" and start.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        if not _decodes(path, codec):
            return None
        source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="given")
        return codec
    for bom, codec in _BOMS:
        if start.startswith(bom):
            if not _decodes(path, codec):
                return None
            source.update(encoding=codecs.lookup(codec).name.upper(), encoding_source="byte order mark")
            return codec
    if (codec := _utf16_without_bom(start)) is not None:
        if not _decodes(path, codec):
            return None
        source.update(encoding=codec.upper(), encoding_source="detected")
        notes.append(
            problem("encoding", at(source["display"], Message("imports.decoded_utf16", encoding=codec.upper())))
        )
        return codec
    if _decodes(path, "utf-8"):
        source.update(encoding="UTF-8", encoding_source="detected")
        return "utf-8"
    if _decodes(path, "gb18030") and not _mixed_lines(path):
        source.update(encoding="GB18030", encoding_source="detected")
        notes.append(problem("encoding", at(source["display"], Message("imports.decoded_gb18030"))))
        return "gb18030"
    return None
