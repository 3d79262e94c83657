"""Locating the layer to read: a folder holding one .shp, a .shp, a .zip (unpacked safely), a file geodatabase
(a .gdb folder, read by GDAL's OpenFileGDB driver) or another file.

Moved out of `gridkit.io.vector`, which describes the behaviour; members of a .zip with absolute
paths, `..`, symlinks or encryption are refused before anything is written, and so is a .zip
that unpacks to more than MAX_ZIP_BYTES.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from gridkit.io.problems import VectorReadError, _fatal, _first_line, problem, refusal
from gridkit.messages import Message

# Unpacked size limit for a .zip (a guard against zip bombs).
MAX_ZIP_BYTES = 2 * 1024**3
_VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json")


@contextmanager
def _located(path: Path, layer: str | None, source: dict) -> Iterator[tuple[Path, str | None]]:
    """Yield (file GDAL should open, layer name for GDAL); a .zip is unpacked for the duration."""
    if not path.exists():
        raise _fatal(source, "not_found", "not_found", path=str(path))
    if path.is_dir() and path.suffix.lower() == ".gdb":  # an Esri file geodatabase (GDAL's OpenFileGDB)
        yield path, layer
        return
    if path.is_dir():
        shp = _pick_shapefile(_files_with_suffix(path, ".shp"), layer, f"folder {path}", source, path)
        source["file"] = str(shp.relative_to(path))
        _check_parts(shp, source)
        yield shp, None
        return
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridkit-zip-") as tmp:
            folder = _unzip_safely(path, Path(tmp), source)
            shapefiles = _files_with_suffix(folder, ".shp")
            if shapefiles:
                found = _pick_shapefile(shapefiles, layer, f"{path.name}", source, folder)
                source["file"] = str(found.relative_to(folder))
                _check_parts(found, source)
                yield found, None
                return
            others = [p for s in _VECTOR_SUFFIXES for p in _files_with_suffix(folder, s)]
            others += sorted(p for p in folder.rglob("*") if p.is_dir() and p.suffix.lower() == ".gdb")
            if len(others) != 1:
                listed = ", ".join(str(p.relative_to(folder)) for p in others) or "none"
                raise _fatal(source, "no_layer_in_zip", "no_layer_in_zip", file=path.name, listed=listed)
            source["file"] = str(others[0].relative_to(folder))
            yield others[0], layer
            return
    if path.stat().st_size == 0:
        raise _fatal(source, "empty_file", "empty_file", file=path.name)
    if path.suffix.lower() == ".shp":
        _check_parts(path, source)
    yield path, layer


# The files a shapefile is read from besides its .shp: the index of its shapes, and its attributes (codes,
# names), without which GDAL reads a layer with no columns at all (and an import asks for a column by name).
_SHAPEFILE_PARTS = (".shx", ".dbf")


def _check_parts(shp: Path, source: dict) -> None:
    """Refuse a shapefile whose .shx or .dbf is not beside its .shp (any letter case), naming what is missing."""
    present = {p.name.lower() for p in shp.parent.iterdir()}
    missing = [shp.stem + suffix for suffix in _SHAPEFILE_PARTS if (shp.stem + suffix).lower() not in present]
    if missing:
        raise _fatal(source, "shapefile_incomplete", "shapefile_incomplete", file=shp.name, missing=", ".join(missing))


def _files_with_suffix(folder: Path, suffix: str) -> list[Path]:
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == suffix and "__MACOSX" not in p.parts]
    return sorted(found)


def _pick_shapefile(shapefiles: list[Path], layer: str | None, where: str, source: dict, root: Path) -> Path:
    if not shapefiles:
        raise _fatal(source, "no_shapefile", "no_shapefile", where=where)
    # Shapefiles of the same name in different folders are named by their path, and chosen by it.
    stems = [p.stem for p in shapefiles]
    names = [p.relative_to(root).with_suffix("").as_posix() if stems.count(p.stem) > 1 else p.stem for p in shapefiles]
    if layer is not None:
        wanted = layer.replace("\\", "/").removesuffix(".shp")
        chosen = [p for p, name in zip(shapefiles, names) if wanted in (name, p.stem)]
        if len(chosen) == 1:
            return chosen[0]
        raise _fatal(source, "no_such_layer", "no_such_shapefile", where=where, layer=layer, names=", ".join(names))
    if len(shapefiles) > 1:
        raise _fatal(
            source, "several_layers", "several_shapefiles", where=where, count=len(shapefiles), names=", ".join(names)
        )
    return shapefiles[0]


def _unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute"
    if ".." in PurePosixPath(name).parts:
        return "parent"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symlink"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def _unzip_safely(path: Path, dest: Path, source: dict) -> Path:
    """Unpack `path` into `dest` after checking every member; nothing is written if any is unsafe."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _fatal(source, "bad_zip", "bad_zip", file=path.name)
    with archive:
        members = archive.infolist()
        bad = [(m.filename, reason) for m in members if (reason := _unsafe_member_reason(m))]
        if bad:
            problems = [
                problem(
                    "unsafe_zip",
                    Message(
                        "geometry.vector.unsafe_zip_member",
                        file=path.name,
                        member=name,
                        reason=Message(f"geometry.zip.{reason}"),
                    ),
                    field=name,
                )
                for name, reason in bad
            ]
            code, params = refusal(path.name, problems, "unpacked")
            raise VectorReadError(code, problems=problems, source=source, **params)
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise _fatal(source, "zip_too_large", "zip_too_large", file=path.name, gb=MAX_ZIP_BYTES // 1024**3)
        root = dest.resolve()
        for member in members:
            target = (root / member.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(root):  # belt and braces after the checks above
                raise _fatal(source, "unsafe_zip", "zip_member_outside", file=path.name, member=member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                # A damaged member (bad CRC, truncated or corrupt deflate stream, unknown method).
                raise _fatal(
                    source,
                    "bad_zip_member",
                    "bad_zip_member",
                    file=path.name,
                    member=member.filename,
                    reason=_first_line(exc),
                )
    return root
