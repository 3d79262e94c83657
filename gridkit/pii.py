"""Personal data: keyed hashes of citizen ID numbers and the key they need."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from gridkit.config import Settings
from gridkit.errors import SetupError


def pii_key(settings: Settings) -> bytes:
    """Return the key for hashing citizen IDs: GRIDKIT_PII_KEY, else one kept in GRIDKIT_HOME."""
    if settings.pii_key:
        return settings.pii_key.encode()
    path = Path(settings.home) / "pii_key"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
    except OSError as exc:
        raise SetupError(f"cannot keep the personal-data key in {path} ({exc.strerror}): make "
                         "GRIDKIT_HOME writable or set GRIDKIT_PII_KEY.")


def hash_citizen_id(key: bytes, id_number: str) -> str:
    """Return the hex HMAC-SHA256 of a normalised citizen ID: matchable, not readable."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()
