"""Personal data: keyed hashes of citizen ID numbers and the key they need."""

from __future__ import annotations

import hashlib
import hmac

from gridkit.config import Settings
from gridkit.keys import kept_key


def pii_key(settings: Settings) -> bytes:
    """Return the key for hashing citizen IDs: GRIDKIT_PII_KEY, else one kept in GRIDKIT_HOME/pii_key."""
    return kept_key(settings.home, "pii_key", settings.pii_key, setting="GRIDKIT_PII_KEY",
                    what="personal-data key").encode()


def hash_citizen_id(key: bytes, id_number: str) -> str:
    """Return the hex HMAC-SHA256 of a normalised citizen ID: matchable, not readable."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()
