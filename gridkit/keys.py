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
            # O_EXCL with mode 0600: the key is never readable by others, not even for a moment.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()
    except FileExistsError:
        return path.read_text().strip()  # another process created it a moment ago
    except OSError as exc:
        raise SetupError("keys.cannot_keep", what=what, path=str(path), reason=exc.strerror, setting=setting) from None
