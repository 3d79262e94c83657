"""Personal data: keyed hashes of citizen ID numbers, the key they need, and masked or audited reveals."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.config import Settings
from gridkit.keys import kept_key
from gridkit.messages import Message
from gridkit.standard.ids import mask_citizen_id, mask_phone

# Where a case or a resident is, as answered to someone who may not read personal data (Open311's public GET,
# the public OGC incidents collection, masked exports): a citizen's report location can be their home, so
# the point is snapped to a grid of PUBLIC_LOCATION_STEP degrees of the storage CRS (EPSG:4490), about
# 111 m north-south and 100 m east-west in southern China; the exact point is for staff whose role may
# read personal data in the case's area (gridkit.users.may_see_personal_data) and trusted Open311 keys.
PUBLIC_LOCATION_STEP = 0.001


def public_location_sql(column: str) -> str:
    """Return SQL of the point `column` (storage SRID) as shown publicly: snapped to PUBLIC_LOCATION_STEP."""
    # Indexed as this very expression on incident.geom (migration 20261206_scale8b): change both together.
    return f"ST_SnapToGrid({column}, {PUBLIC_LOCATION_STEP})"


def public_location(lon: float, lat: float) -> tuple[str, str]:
    """Return the point (storage SRID degrees) as shown publicly, as text: public_location_sql's snap in Python
    (the nearest multiple of PUBLIC_LOCATION_STEP), for messages and reports read by anyone."""
    return _public_degrees(lon), _public_degrees(lat)


def _public_degrees(value: float) -> str:
    places = len(f"{PUBLIC_LOCATION_STEP:f}".rstrip("0").split(".")[1])
    return f"{round(value / PUBLIC_LOCATION_STEP) * PUBLIC_LOCATION_STEP:.{places}f}"


# How an import's message (its report's .txt/.json/.csv, the CLI's lines) speaks of the coordinates typed in a row
# of a person (a resident: their home) or a case (its caller's home, maybe): never as typed, but rounded as to the
# public when the value reads as degrees, else by its shape (metres and their zone number, a decimal comma, its
# digits as #), which is what the one who fixes the file needs; the row's line names which one. Rows of buildings,
# entities and components are no one's: their messages quote the values as typed.
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_SHAPE_LENGTH = 40


def _typed_number(text) -> float | None:
    """Return a typed coordinate as a number: decimal (full-width too) or degrees-minutes-seconds; else None."""
    from gridkit.coords import dms_degrees  # here: gridkit.coords loads shapely, which most readers of pii never need

    value = unicodedata.normalize("NFKC", str(text)).strip()
    try:
        number = float(value)
    except ValueError:
        number = dms_degrees(value)
    return number if number is not None and math.isfinite(number) else None


def typed_coordinate(text) -> Message:
    """Return one coordinate typed in a personal row as a message may say it: about its value to
    PUBLIC_LOCATION_STEP when it reads as degrees, metres with their zone number (the digits in front of an easting
    of 8 digits: 38 of 38 512 345) and how many digits, a text without digits as typed, else its shape with each
    digit as # (a decimal comma, degrees-minutes-seconds past 60: ###,####, ###°##′##″E)."""
    number = None if _COMMA_NUMBER.match(str(text)) else _typed_number(text)
    if number is not None and abs(number) <= 180:
        return Message("pii.coordinate.degrees", value=_public_degrees(number))
    if number is not None:
        digits = len(str(int(abs(number))))
        zone = int(abs(number)) // 1_000_000
        if digits == 8 and (25 <= zone <= 45 or 13 <= zone <= 23):
            return Message("pii.coordinate.metres_zone", zone=zone, degrees=3 if zone >= 25 else 6)
        return Message("pii.coordinate.metres", digits=digits)
    typed = str(text).strip()
    if not any(c.isnumeric() for c in typed):  # no digit (N/A, 无): nowhere, and says what was typed
        return Message("pii.coordinate.text", text=typed[:_SHAPE_LENGTH])
    shape = "".join("#" if c.isnumeric() else c for c in typed)
    more = "…" if len(shape) > _SHAPE_LENGTH else ""
    return Message("pii.coordinate.shape", shape=shape[:_SHAPE_LENGTH] + more)


def typed_location(x_text, y_text) -> Message:
    """Return the two coordinates typed in a personal row as a message may say them: both rounded as to the public
    (public_location) when both read as degrees, else each as typed_coordinate says it."""
    x, y = _typed_number(x_text), _typed_number(y_text)
    commas = _COMMA_NUMBER.match(str(x_text)) or _COMMA_NUMBER.match(str(y_text))
    if x is not None and y is not None and not commas and abs(x) <= 180 and abs(y) <= 180:
        lon, lat = public_location(x, y)
        return Message("pii.location.about", lon=lon, lat=lat)
    return Message("pii.location.pair", x=typed_coordinate(x_text), y=typed_coordinate(y_text))


def public_extent(x0: float, y0: float, x1: float, y1: float) -> Message:
    """Return the extent of a personal layer's points (or one point) as a message may say it: its edges are
    residents' homes, so rounded as to the public in degrees, else the shape of its first corner (typed_coordinate)."""
    if all(abs(v) <= 180 for v in (x0, y0, x1, y1)):
        if (x0, y0) == (x1, y1):
            lon, lat = public_location(x0, y0)
            return Message("pii.location.about", lon=lon, lat=lat)
        (west, south), (east, north) = public_location(x0, y0), public_location(x1, y1)
        return Message("pii.extent.about", west=west, east=east, south=south, north=north)
    return Message("pii.location.pair", x=typed_coordinate(repr(x0)), y=typed_coordinate(repr(y0)))


# A group that names people when linked to other data (a resident's household: who lives with whom), as a masked
# export gives it: a pseudonym keyed by a random key of that one export (EXPORT_PSEUDONYM_KEY, a bound parameter),
# so rows of one household share it within the file while two exports' pseudonyms cannot be matched, nor
# the household's own id found from it. 16 hex digits: a collision among 10 million households ~1 in 400,000.
EXPORT_PSEUDONYM_KEY = "pseudonym_key"


def export_pseudonym_key() -> str:
    """Return a new random key for the pseudonyms of one export (export_pseudonym_sql)."""
    return secrets.token_hex(16)


def export_pseudonym_sql(column: str) -> str:
    """Return SQL of the text `column` as a masked export gives it: empty stays empty, else 'H' and 16 hex
    digits of the MD5 of the export's key (bound as :pseudonym_key) and the value."""
    return (
        f"CASE WHEN {column} IS NULL OR {column} = '' THEN {column} "
        f"ELSE 'H' || left(md5(:{EXPORT_PSEUDONYM_KEY} || {column}), 16) END"
    )


def mask_person_name(value: str) -> str:
    """Return a person's name with all but its first character hidden: 张三丰 → 张** (as exports mask it)."""
    return value[:1] + "*" * max(len(value) - 1, 1)


def mask_typed(value: str) -> str:
    """Return a personal value as typed (valid or not) with its middle hidden: 12 characters or more (IDs) as
    first 4 + '*' + last 4, 8 or more (phones) as first 3 + '*' + last 4, shorter ones all '*'."""
    s = str(value).strip()
    if len(s) >= 12:
        return s[:4] + "*" * (len(s) - 8) + s[-4:]
    if len(s) >= 8:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    return "*" * len(s)


def mask_typed_phone(value: str) -> str:
    """Return a phone someone typed as a message may repeat it: mask_phone's form when it is a valid
    number, else mask_typed's (a mistyped number is still someone's, or nearly)."""
    try:
        return mask_phone(value)
    except ValueError:
        return mask_typed(value)


def masked_phone_reason(exc: Exception, raw: str) -> Message:
    """Return why validate_phone refused `raw` (its InvalidValue `exc`) with the number masked (mask_typed)."""
    code, params = getattr(exc, "code", None), dict(getattr(exc, "params", {}))
    if code is None:
        return Message("imports.phone_invalid", phone=mask_typed(raw))
    if "phone" in params:
        params["phone"] = mask_typed(raw)
    return Message(f"error.{code}", **params)


# A phone or citizen ID number written inside free text (a case's description): an 18-character ID, a
# mainland mobile (11 digits, spaced 3-4-4 or not, after an optional +86), a landline with its area code;
# never part of a longer run of letters and digits (case codes, cell codes, component codes stay whole).
_PERSONAL_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])(?:(?P<id>\d{17}[0-9Xx])|(?P<mobile>(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2})"
    r"|(?P<area>0\d{2,3})[- ](?P<local>\d{7,8}))(?![0-9A-Za-z])"
)


def _mask_found(match: re.Match) -> str:
    if match["id"]:
        return match["id"][:4] + "*" * 10 + match["id"][-4:]
    if match["mobile"]:
        digits = re.sub(r"\D", "", match["mobile"])[-11:]
        return digits[:3] + "****" + digits[-4:]
    return f"{match['area']}-{'*' * (len(match['local']) - 4)}{match['local'][-4:]}"


def mask_personal_text(text: str | None) -> str | None:
    """Return free text with every phone and citizen ID number in it masked (138****8000, 4403**********1234)."""
    return _PERSONAL_IN_TEXT.sub(_mask_found, text) if text else text


def holds_personal_text(text: str | None) -> bool:
    """True when free text carries a phone or citizen ID number (what mask_personal_text would mask)."""
    return bool(text) and _PERSONAL_IN_TEXT.search(text) is not None


# What PostgreSQL quotes from a refused row in an error's DETAIL ("Failing row contains (…)", "Key
# (phone)=(…) already exists"): a resident's or a case's whole row, names and phones included.
_ROW_IN_ERROR = re.compile(r"(Failing row contains |Key \([^)]*\)=)\((?:[^()]|\([^()]*\))*\)")


def scrub_log_text(text: str) -> str:
    """Return a log line or traceback without personal data: the values PostgreSQL quotes from a refused
    row left out, phone and citizen ID numbers masked (the engine already hides bound values)."""
    return mask_personal_text(_ROW_IN_ERROR.sub(r"\1(…)", text))


class ScrubPersonalData(logging.Filter):
    """A logging filter that scrubs each record's message and traceback (scrub_log_text) before any
    handler writes it: a failing statement's error quotes the row it refused."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_log_text(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_log_text(record.exc_text)
        return True


# How an Open311 post's building (its address_id) is kept at the end of the case's description. It
# names the building exactly, so a public answer leaves it out (public_text) as it rounds the place.
ADDRESS_TAG = " [address_id={}]"
_ADDRESS_TAG = re.compile(r" ?\[address_id=[^\]]*\]")


def public_text(text: str | None) -> str | None:
    """Return a case's free text as the public reads it: phone and citizen ID numbers masked, and the
    building an Open311 post named (ADDRESS_TAG) left out."""
    return mask_personal_text(_ADDRESS_TAG.sub("", text)) if text else text


# The same in SQL, for exports masked in the database (gridkit.io.export_layers): one pass per kind of
# number, IDs first (a mobile's digits inside an ID stay the ID's), tests keep it equal to public_text.
_PUBLIC_TEXT_SQL = (
    (r" ?\[address_id=[^]]*\]", ""),
    (r"(?<![0-9A-Za-z])([0-9]{4})[0-9]{10}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])", r"\1**********\2"),
    (r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?[0-9]{4}[ -]?([0-9]{4})(?![0-9A-Za-z])", r"\1****\2"),
    (r"(?<![0-9A-Za-z])(0[0-9]{2,3})[- ][0-9]{4}([0-9]{4})(?![0-9A-Za-z])", r"\1-****\2"),
    (r"(?<![0-9A-Za-z])(0[0-9]{2,3})[- ][0-9]{3}([0-9]{4})(?![0-9A-Za-z])", r"\1-***\2"),
)


def public_text_sql(column: str) -> str:
    """Return SQL of the text `column` as the public reads it (public_text, in the database)."""
    sql = column
    for pattern, replacement in _PUBLIC_TEXT_SQL:
        sql = f"regexp_replace({sql}, '{pattern}', '{replacement}', 'g')"
    return sql


# Words in a field name of an imported file (kept attributes, exported back) that say the field holds
# a person's name, phone or ID number: masked as such in every masked export. Values shaped like a
# citizen ID or a phone are masked whatever their field is called (gridkit.io.export_layers.mask_kept).
PERSONAL_FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "联系人", "负责人", "网格员", "协管员", "户主", "法人", "居民", "contact", "person", "owner"),
    "phone": ("电话", "手机", "联系方式", "phone", "mobile", "tel"),
    "id_number": ("身份证", "证件号", "idcard", "id_card", "id_number", "citizen"),
}


def personal_kind(field: str) -> str | None:
    """Return "name", "phone" or "id_number" when a file's field name says it holds that, else None."""
    lowered = field.lower()
    for kind, words in PERSONAL_FIELD_WORDS.items():
        if any(word in lowered for word in words):
            return kind
    return None


# How each personal field is shown to someone who may not read it in clear.
MASKS: dict[str, Callable] = {
    # mask_typed_phone, not mask_phone: a stored number that is not valid (kept before numbers were checked, or
    # written by another program) is masked too, not refused with an error that quotes it.
    "phone": mask_typed_phone,
    "id_number": mask_citizen_id,
    "name": mask_person_name,
    "reporter": mask_person_name,
    # A case's free text: its description, the notes of its history and its photos' file names (lists).
    "description": mask_personal_text,
    "notes": lambda notes: [mask_personal_text(n) for n in notes],
    "photos": lambda names: [mask_personal_text(n) for n in names],
}


def pii_key(settings: Settings) -> bytes:
    """Return the key for hashing citizen IDs: GRIDKIT_PII_KEY, else one kept in GRIDKIT_HOME/pii_key."""
    return kept_key(
        settings.home, "pii_key", settings.pii_key, setting="GRIDKIT_PII_KEY", what=Message("keys.pii_key")
    ).encode()


def hash_citizen_id(key: bytes, id_number: str) -> str:
    """Return the hex HMAC-SHA256 of a normalised citizen ID: matchable, not readable."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()


def mask_or_reveal(
    session: Session,
    records: Iterable[dict],
    *,
    reveal: bool,
    actor: str,
    object_type: str,
    fields: tuple[str, ...] = ("phone",),
    object_id=None,
    **detail,
) -> list[dict]:
    """Mask `fields` of each record in place, or leave them clear and record the reveal in the audit log.

    The one rule for personal fields leaving the system (CLI output, web pages, exports): masked
    unless the caller asked and may read them; every clear read is one audit row in the caller's
    transaction, naming the actor, the kind of object, the fields and how many records.
    """
    records = list(records)
    if reveal:
        if records:
            record(
                session,
                actor,
                PERSONAL_DATA_READ,
                object_type=object_type,
                object_id=object_id,
                detail_fields=list(fields),
                count=len(records),
                **detail,
            )
        return records
    for row in records:
        for name in fields:
            if row.get(name):
                row[name] = MASKS[name](row[name])
    return records


def private_folder(folder) -> None:
    """Make `folder` (with its parents) and leave it owner-only (0700) whatever the umask: it holds personal data
    (a case's photos show people, homes and number plates; an import's report quotes rows), and GRIDKIT_HOME itself
    must stay searchable by the database server's user (so, usually, by every user of the machine)."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
