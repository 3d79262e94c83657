"""Identity numbers: citizen IDs (GB 11643-1999), unified social credit codes (GB 32100-2015), phones.

Validators return the normalised value (surrounding whitespace removed, letters upper-cased) and
raise InvalidValue (a ValueError with a catalogue code) saying exactly what is wrong, for a coordinator to act on.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import numpy as np

from gridkit.messages import Message
from gridkit.standard import InvalidValue

__all__ = [
    "MOBILE_PATTERN",
    "birth_date_of",
    "citizen_id_check_bytes",
    "citizen_id_check_char",
    "citizen_ids_valid",
    "credit_code_check_char",
    "credit_codes_valid",
    "mask_citizen_id",
    "mask_phone",
    "organization_code_check_char",
    "validate_citizen_id",
    "validate_credit_code",
    "validate_phone",
]

# GB 11643-1999: ISO 7064 MOD 11-2 weights are 2**(17 - i) mod 11 for positions 1..17.
_CITIZEN_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CITIZEN_CHECK_CHARS = "10X98765432"  # indexed by (sum of weighted digits) mod 11
_EARLIEST_BIRTH = date(1900, 1, 1)

# GB/T 2260 province-level prefixes (83: residence permits of Taiwan residents).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)

# GB 32100-2015: 31 characters, value = position; I O Z S V are left out to avoid misreading.
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUES = {c: i for i, c in enumerate(_CREDIT_CHARS)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3**i mod 31

# GB 11714-1997 organisation code (positions 9-17 of a credit code): 8 body characters + check.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

MOBILE_PATTERN = "1[3-9][0-9]{9}"  # an 11-digit mainland mobile number (also an RE2 pattern, for pyarrow)
_MOBILE = re.compile(MOBILE_PATTERN)
# The country code as written before a mainland number: "+86", "0086", "(+86)"; a bare "86" only when a
# separator follows it (as in "86 138 0013 8000") or a mobile's 11 digits do.
_COUNTRY = re.compile(r"^(?:\(\s*(?:\+|00)86\s*\)|(?:\+|00)86|86(?=[\s-]|1[3-9]\d{9}$))[\s-]*")
_AREA_IN_PARENTHESES = re.compile(r"^\((0\d{2,3})\)\s*")
_LOCAL_NUMBER = re.compile(r"[1-9]\d{6,7}")


def _clean(value, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue("id.not_text", what=Message(f"id.what.{what}"), type=type(value).__name__)
    # Full-width characters (typed with a Chinese input method: '４４０３…ｘ', '－', '（）') read as their ASCII forms.
    return unicodedata.normalize("NFKC", value).strip()


# --- citizen ID numbers (GB 11643-1999) ---------------------------------------------------------


def citizen_id_check_char(first17: str) -> str:
    """Return the GB 11643 check character ('0'-'9' or 'X') for the first 17 digits of a citizen ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidValue("id.citizen_check_input", value=first17)
    total = sum(int(d) * w for d, w in zip(first17, _CITIZEN_WEIGHTS))
    return _CITIZEN_CHECK_CHARS[total % 11]


def birth_date_of(citizen_id: str) -> date:
    """Return the birth date in digits 7-14 (YYYYMMDD) of a valid 18-digit citizen ID number."""
    return date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))


def validate_citizen_id(value: str, *, today: date | None = None) -> str:
    """Return the citizen ID number normalised (upper-case 'X'), or raise InvalidValue saying what is wrong.

    `today` (default: the current date) bounds the birth date; birth dates before 1900 are refused.
    """
    s = _clean(value, "citizen_id").upper()
    if len(s) != 18:
        raise InvalidValue("id.citizen_length_15" if len(s) == 15 else "id.citizen_length", length=len(s))
    for position, char in enumerate(s[:17], start=1):
        if not ("0" <= char <= "9"):
            raise InvalidValue("id.citizen_not_digit", position=position, char=char)
    if not ("0" <= s[17] <= "9" or s[17] == "X"):
        raise InvalidValue("id.citizen_last_char", char=s[17])
    if s[:2] not in _PROVINCES:
        raise InvalidValue("id.citizen_region", region=s[:6], province=s[:2])
    birth_text = s[6:14]
    try:
        birth = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        raise InvalidValue("id.citizen_birth_not_date", birth=birth_text) from None
    if birth < _EARLIEST_BIRTH:
        raise InvalidValue("id.citizen_birth_before_1900", birth=birth.isoformat())
    today = today or _today()
    if birth > today:
        raise InvalidValue("id.citizen_birth_future", birth=birth.isoformat())
    expected = citizen_id_check_char(s[:17])
    if s[17] != expected:
        raise InvalidValue("id.citizen_check", expected=expected, got=s[17])
    return s


_CITIZEN_WEIGHTS_ARRAY = np.array(_CITIZEN_WEIGHTS, dtype=np.int64)
_CITIZEN_CHECK_BYTES = np.frombuffer(_CITIZEN_CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_PROVINCE_BY_NUMBER = np.isin(np.arange(100), [int(p) for p in _PROVINCES])
_MONTH_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # February of a leap year


def citizen_id_check_bytes(digits: np.ndarray) -> np.ndarray:
    """Return the check characters (ASCII bytes) of an (n, 17) array of the first 17 digits (as numbers 0-9): the
    bulk form of citizen_id_check_char."""
    return _CITIZEN_CHECK_BYTES[(np.asarray(digits, dtype=np.int64) * _CITIZEN_WEIGHTS_ARRAY).sum(axis=1) % 11]


def citizen_ids_valid(chars: np.ndarray, *, today: date | None = None) -> np.ndarray:
    """Return, for each row of an (n, 18) uint8 array of ASCII characters, whether it is a valid citizen ID:
    the bulk form of validate_citizen_id (the same rules, for millions of rows at once; a row it refuses
    goes through validate_citizen_id to be told what is wrong)."""
    chars = np.asarray(chars, dtype=np.uint8).reshape(-1, 18)
    d = chars[:, :17].astype(np.int64) - ord("0")
    shaped = ((d >= 0) & (d <= 9)).all(axis=1) & (
        ((chars[:, 17] >= ord("0")) & (chars[:, 17] <= ord("9"))) | (chars[:, 17] == ord("X"))
    )
    d = np.where(shaped[:, None], d, 0)
    check_ok = citizen_id_check_bytes(d) == chars[:, 17]
    province_ok = _PROVINCE_BY_NUMBER[d[:, 0] * 10 + d[:, 1]]
    year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
    month = d[:, 10] * 10 + d[:, 11]
    day = d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days = _MONTH_DAYS[np.where(month_ok, month, 0)] - ((month == 2) & ~leap)
    today = today or _today()
    ymd = year * 10000 + month * 100 + day
    earliest = _EARLIEST_BIRTH.year * 10000 + _EARLIEST_BIRTH.month * 100 + _EARLIEST_BIRTH.day
    date_ok = (
        month_ok
        & (day >= 1)
        & (day <= days)
        & (ymd >= earliest)
        & (ymd <= today.year * 10000 + today.month * 100 + today.day)
    )
    return shaped & check_ok & province_ok & date_ok


def mask_citizen_id(value: str) -> str:
    """Return an 18-character citizen ID with its middle hidden: first 4 + 10 '*' + last 4."""
    s = _clean(value, "citizen_id").upper()
    if len(s) != 18:
        raise InvalidValue("id.citizen_mask_length", length=len(s))
    return s[:4] + "*" * 10 + s[-4:]


# --- unified social credit codes (GB 32100-2015) ------------------------------------------------


def organization_code_check_char(first8: str) -> str:
    """Return the GB 11714 check character of an organisation code body (8 digits or capitals)."""
    if len(first8) != 8 or any(c not in _ORG_CHARS for c in first8):
        raise InvalidValue("id.org_check_input", value=first8)
    total = sum(_ORG_CHARS.index(c) * w for c, w in zip(first8, _ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def credit_code_check_char(first17: str) -> str:
    """Return the GB 32100 check character for the first 17 characters of a unified social credit code."""
    if len(first17) != 17 or any(c not in _CREDIT_VALUES for c in first17):
        raise InvalidValue("id.credit_check_input", chars=_CREDIT_CHARS, value=first17)
    total = sum(_CREDIT_VALUES[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


# Each byte's GB 32100 value (-1: not one of the 31 characters, lower case included) and each value's character.
_CREDIT_VALUE_OF_BYTE = np.full(256, -1, dtype=np.int64)
_CREDIT_VALUE_OF_BYTE[np.frombuffer(_CREDIT_CHARS.encode("ascii"), dtype=np.uint8)] = np.arange(len(_CREDIT_CHARS))
_CREDIT_WEIGHTS_ARRAY = np.array(_CREDIT_WEIGHTS, dtype=np.int64)


def credit_codes_valid(chars: np.ndarray) -> np.ndarray:
    """Return, for each row of an (n, 18) uint8 array of ASCII characters, whether it is a valid unified social
    credit code as written (upper case): the bulk form of validate_credit_code (the same rules, for millions of
    rows at once; a row it refuses goes through validate_credit_code, which normalises or says what is wrong)."""
    chars = np.asarray(chars, dtype=np.uint8).reshape(-1, 18)
    values = _CREDIT_VALUE_OF_BYTE[chars]
    shaped = (values >= 0).all(axis=1) & (values[:, 2:8] <= 9).all(axis=1)
    values = np.where(shaped[:, None], values, 0)
    expected = (31 - (values[:, :17] * _CREDIT_WEIGHTS_ARRAY).sum(axis=1) % 31) % 31
    return shaped & (values[:, 17] == expected)


def validate_credit_code(value: str) -> str:
    """Return the unified social credit code normalised (upper case), or raise InvalidValue saying what is wrong."""
    s = _clean(value, "credit_code").upper()
    if len(s) != 18:
        raise InvalidValue("id.credit_length", length=len(s))
    for position, char in enumerate(s, start=1):
        if char not in _CREDIT_VALUES:
            raise InvalidValue("id.credit_char", position=position, char=char)
    if not s[2:8].isdigit():
        raise InvalidValue("id.credit_region", region=s[2:8])
    expected = credit_code_check_char(s[:17])
    if s[17] != expected:
        raise InvalidValue("id.credit_check", expected=expected, got=s[17])
    return s


# --- phone numbers --------------------------------------------------------------------------------


def _area_code_length(digits: str) -> int:
    # 010 (Beijing) and 02x are 3-digit area codes; all others (03xx-09xx, 01xx) have 4 digits.
    return 3 if digits.startswith(("010", "02")) else 4


def validate_phone(value: str) -> str:
    """Return a mainland phone number normalised: mobiles as 11 digits, landlines as 'area-number'.

    Spaces and hyphens are ignored on input, so '138 0013 8000' and '0755 1234 5678' are accepted, as
    are the forms found in real registers: full-width digits ('１３８…', typed with a Chinese input method),
    the country code ('+86 138 0013 8000', '0086-755-12345678', a landline then without its 0) and an area
    code in parentheses ('(0755) 1234 5678').
    """
    written = value.strip() if isinstance(value, str) else value
    s = _clean(value, "phone")
    without_country = _COUNTRY.sub("", s, count=1)
    if without_country != s:
        # After the country code a landline drops its leading 0 ("+86 10 6512345" is 010-6512345).
        mobile = re.match(r"1[3-9]", without_country)
        s = without_country if mobile or without_country.startswith("0") else "0" + without_country
    s = _AREA_IN_PARENTHESES.sub(r"\1-", s)
    digits = re.sub(r"[\s-]", "", s)
    if not digits:
        raise InvalidValue("id.phone_empty")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidValue("id.phone_chars", phone=written)
    if digits.startswith("1"):
        if len(digits) != 11:
            raise InvalidValue("id.mobile_length", phone=written, length=len(digits))
        if not _MOBILE.fullmatch(digits):
            raise InvalidValue("id.mobile_prefix", phone=written)
        return digits
    if digits.startswith("0"):
        area_len = _area_code_length(digits)
        area, local = digits[:area_len], digits[area_len:]
        if "-" in s and s.split("-")[0].strip().replace(" ", "") != area:
            raise InvalidValue("id.landline_area", phone=written, given=s.split("-")[0].strip(), expected=area)
        if not _LOCAL_NUMBER.fullmatch(local):
            raise InvalidValue("id.landline_local", phone=written, area_digits=area_len)
        return f"{area}-{local}"
    raise InvalidValue("id.phone_kind", phone=written)


def mask_phone(value: str) -> str:
    """Return a phone number with its middle hidden: '138****5678', landlines '0755-****5678'."""
    phone = validate_phone(value)
    if "-" in phone:
        area, local = phone.split("-")
        return f"{area}-{'*' * (len(local) - 4)}{local[-4:]}"
    return phone[:3] + "****" + phone[-4:]


def _today() -> date:
    """Return today's date in Beijing time (a birth "in the future" is one after it, whatever the server's zone)."""
    from gridkit.rules import today

    return today()
