"""Photos sent with a feedback: checked by their first bytes and size, kept under GRIDKIT_HOME."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.models import IncidentAttachment
from gridkit.pii import private_folder

MAX_BYTES = 10 * 1024 * 1024
# Photos one feedback may carry (each read whole into memory before it is checked).
MAX_FILES = 9
# The file's own first bytes decide its type, never its name: (prefix, offset, media type, suffix).
_MAGIC = (
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"GIF87a", 0, "image/gif", ".gif"),
    (b"GIF89a", 0, "image/gif", ".gif"),
    (b"WEBP", 8, "image/webp", ".webp"),
)
FOLDER = "attachments"


@dataclass(frozen=True)
class Checked:
    """An attachment that passed the checks: its bytes, type, suffix and original name."""

    data: bytes
    media_type: str
    suffix: str
    name: str


def media_type_of(data: bytes) -> tuple[str, str] | None:
    """Return (media type, suffix) of an image by its first bytes, or None when it is no image we keep."""
    for magic, offset, media_type, suffix in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (suffix != ".webp" or data[:4] == b"RIFF"):
            return media_type, suffix
    return None


def check_attachment(item) -> Checked:
    """Return the checked attachment of a path or a (name, bytes) pair; refuse non-images and big files."""
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise NotFound("incident.attachment_missing", path=str(path))
        if path.stat().st_size > MAX_BYTES:
            raise ValidationError(
                "incident.attachment_too_large", name=path.name, size=path.stat().st_size, limit=MAX_BYTES
            )
        name, data = path.name, path.read_bytes()
    else:
        name, data = item
        name = Path(name or "upload").name
    if len(data) > MAX_BYTES:
        raise ValidationError("incident.attachment_too_large", name=name, size=len(data), limit=MAX_BYTES)
    if not data:
        raise ValidationError("incident.attachment_empty", name=name)
    kind = media_type_of(data)
    if kind is None:
        raise ValidationError("incident.attachment_not_image", name=name)
    return Checked(data, kind[0], kind[1], name[:200])


def store(session: Session, item: Checked, home: Path, incident_id: int, history_id: int | None) -> IncidentAttachment:
    """Write the file under home/attachments/<incident id>/ (named by its SHA-256) and return its row, to be added
    to `session`. A file written here is removed again if the session's transaction is rolled back (the request
    failed, the import was refused): no photo is left on disk without its row."""
    digest = hashlib.sha256(item.data).hexdigest()
    relative = Path(FOLDER) / str(incident_id) / f"{digest[:32]}{item.suffix}"
    target = home / relative
    private_folder(home / FOLDER)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(fd, "wb") as f:
                f.write(item.data)
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a photo half written (a full disk) is no photo
            raise
        _remove_on_rollback(session, target)
    return IncidentAttachment(
        incident_id=incident_id,
        history_id=history_id,
        path=str(relative),
        media_type=item.media_type,
        size=len(item.data),
        sha256=digest,
        original_name=item.name,
    )


_WRITTEN = "gridkit.attachments_written"


def _remove_on_rollback(session: Session, path: Path) -> None:
    """Remember `path` as written in the session's transaction: removed if it rolls back, kept if it commits."""
    session.info.setdefault(_WRITTEN, []).append(path)


@event.listens_for(Session, "after_commit")
def _forget_written(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_rollback")
def _remove_written(session: Session) -> None:
    for path in session.info.pop(_WRITTEN, ()):
        path.unlink(missing_ok=True)


def attachment_path(home: Path, attachment: IncidentAttachment) -> Path:
    """Return the absolute path of a stored attachment."""
    return Path(home) / attachment.path
