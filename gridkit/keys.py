"""Keys gridkit keeps for itself: given in a setting, else made once and kept in GRIDKIT_HOME."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gridkit.errors import SetupError


def kept_key(home: Path, filename: str, given: str | None, *, setting: str, what) -> str:
    """Return `given`, else the key in home/filename, made with mode 0600 the first time it is asked for.

    `what` names the key in messages (a string or a `messages.Message`).
    """
    if given:
        return given
    path = Path(home) / filename
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _make_key(path)
        key = path.read_text().strip()
    except OSError as exc:
        raise SetupError("keys.cannot_keep", what=what, path=str(path), reason=exc.strerror, setting=setting) from None
    if not key:
        # Kept by a gridkit that could not finish writing it (a full disk): never a key of nothing.
        raise SetupError("keys.empty", what=what, path=str(path), setting=setting)
    return key


def _make_key(path: Path) -> None:
    """Write a new key to `path` whole or not at all: under a temporary name (0600 from the start: never
    readable by others, not even for a moment), then linked to `path`, which only one process can make.
    Another process reading meanwhile sees no file, never an empty one; one made a moment ago is kept."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made it a moment ago: its key is the key
    finally:
        tmp.unlink(missing_ok=True)
