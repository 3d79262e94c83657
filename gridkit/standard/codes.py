"""Code layouts of admin units, base cells, work cells and components, as data (see DESIGN.md).

- community: 6-digit county (GB/T 2260) + 3-digit street + 3-digit community = 12 digits;
- base cell: community code + sequence (3 digits by default as in DB11; 2 digits in CJ/T 213-2005);
- work cell: 6-digit department/service type + 12-digit area code + 2-digit sequence (CJ/T 349-2010);
- component: 6-digit county + 2-digit major class 01-06 + 2-digit minor class + 6-digit serial
  (CJ/T 214 / GB/T 30428.2).

Checkers return the code and raise `InvalidValue` (a ValidationError and a ValueError) with a
catalogue code saying what is wrong. Sequences start at 1: an all-zero sequence or class part is
never a valid code. `work_cell_area_code` / `area_admin_code` translate between an admin unit and
the area part of a work cell code, so that building, checking and validating work cell codes all
follow the configured profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridkit.messages import Message
from gridkit.standard import InvalidValue

__all__ = [
    "CodeProfile",
    "PROFILES",
    "DEFAULT_PROFILE",
    "admin_level_of_code",
    "unpadded_admin_code",
    "check_base_cell_code",
    "base_cell_code",
    "check_work_cell_code",
    "work_cell_code",
    "work_cell_parts",
    "work_cell_area_code",
    "area_admin_code",
    "street_code_of",
    "profile_named",
    "check_component_code",
    "COMPONENT_MAJOR_CLASSES",
]

COUNTY_DIGITS = 6
STREET_DIGITS = 3
COMMUNITY_PART_DIGITS = 3

# CJ/T 214 / GB/T 30428.2 component major classes: the 2 digits after the county code.
COMPONENT_MAJOR_CLASSES = {
    "01": "公用设施",
    "02": "道路交通",
    "03": "市容环境",
    "04": "园林绿化",
    "05": "房屋土地",
    "06": "其他设施",
}


@dataclass(frozen=True)
class CodeProfile:
    """Digit counts of one deployment's code layout; the default is DESIGN.md's."""

    name: str
    community_digits: int = 12
    base_cell_seq_digits: int = 3
    work_cell_type_digits: int = 6
    work_cell_seq_digits: int = 2

    @property
    def base_cell_digits(self) -> int:
        """Total digits of a base cell code (community + sequence)."""
        return self.community_digits + self.base_cell_seq_digits

    @property
    def work_cell_digits(self) -> int:
        """Total digits of a work cell code (department type + area + sequence)."""
        return self.work_cell_type_digits + self.community_digits + self.work_cell_seq_digits


PROFILES: dict[str, CodeProfile] = {
    "default": CodeProfile("default"),
    # CJ/T 213-2005 (数字化城市管理 单元网格): 12-digit community + 2-digit cell sequence = 14 digits.
    "cjt213": CodeProfile("cjt213", base_cell_seq_digits=2),
}
DEFAULT_PROFILE = PROFILES["default"]


def profile_named(name: str | None) -> CodeProfile:
    """Return the code profile called `name` (None: the default one)."""
    if name is None:
        return DEFAULT_PROFILE
    if name not in PROFILES:
        raise InvalidValue("code.unknown_profile", profile=name, known=", ".join(sorted(PROFILES)))
    return PROFILES[name]


def _part(name: str, **params) -> Message:
    return Message(f"code.part.{name}", **params)


def _digits(code, what: Message, length: int) -> str:
    if not isinstance(code, str):
        raise InvalidValue("code.not_text", what=what, type=type(code).__name__, value=code)
    if len(code) != length or not code.isascii() or not code.isdigit():
        raise InvalidValue("code.wrong_digits", what=what, length=length, value=code)
    return code


def _nonzero(part: str, code: str, what: Message) -> None:
    if set(part) == {"0"}:
        raise InvalidValue("code.zero_part", what=what, code=code, part=part, first="0" * (len(part) - 1) + "1")


def admin_level_of_code(code: str) -> str:
    """Return the admin level a code denotes: 'city' or 'district' (6 digits), 'street' (9), 'community' (12).

    A 6-digit code ending in '0000' is a province and one ending in '00' a prefecture-level city
    (GB/T 2260); any other 6-digit code is a district or county.
    """
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise InvalidValue("code.admin_not_digits", value=code)
    if len(code) == COUNTY_DIGITS:
        if code[:2] == "00":
            raise InvalidValue("code.admin_no_province", code=code)
        if code.endswith("0000"):
            return "province"
        return "city" if code.endswith("00") else "district"
    if len(code) == COUNTY_DIGITS + STREET_DIGITS:
        _nonzero(code[6:9], code, _part("street"))
        return "street"
    if len(code) == COUNTY_DIGITS + STREET_DIGITS + COMMUNITY_PART_DIGITS:
        _nonzero(code[6:9], code, _part("street"))
        _nonzero(code[9:12], code, _part("community"))
        return "community"
    raise InvalidValue("code.admin_wrong_length", code=code, length=len(code))


def unpadded_admin_code(code):
    """Return a 12-digit statistical code (国家统计局 统计用区划代码) of a street, district or city as gridkit's
    own code: 440304001000 → 440304001, 440304000000 → 440304; any other value unchanged.

    Street and community parts are never all zeros, so trailing zeros are padding, never part of the code.
    """
    full = COUNTY_DIGITS + STREET_DIGITS + COMMUNITY_PART_DIGITS
    if not (isinstance(code, str) and len(code) == full and code.isascii() and code.isdigit()):
        return code
    if code.endswith("0" * (STREET_DIGITS + COMMUNITY_PART_DIGITS)):
        return code[:COUNTY_DIGITS]
    if code.endswith("0" * COMMUNITY_PART_DIGITS):
        return code[: COUNTY_DIGITS + STREET_DIGITS]
    return code


def admin_code_prefix(code: str) -> str:
    """Return the prefix every code under admin unit `code` starts with: GB/T 2260 writes a province and a
    prefecture-level city with trailing zero pairs (440000 → 44, 440300 → 4403), every other code is its own."""
    if len(code) == COUNTY_DIGITS and code.isascii() and code.isdigit():
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def _check_community_code(code: str) -> str:
    _digits(code, _part("community_code"), COUNTY_DIGITS + STREET_DIGITS + COMMUNITY_PART_DIGITS)
    admin_level_of_code(code)  # refuses all-zero street or community parts
    return code


def check_base_cell_code(code: str, profile: CodeProfile = DEFAULT_PROFILE, community_code: str | None = None) -> str:
    """Return the base cell code if it fits the profile (and lies in community_code, if given)."""
    _digits(code, _part("base_cell_code", profile=profile.name), profile.base_cell_digits)
    community, seq = code[: profile.community_digits], code[profile.community_digits :]
    try:
        _check_community_code(community)
    except InvalidValue as exc:
        raise InvalidValue("code.base_cell_community", code=code, reason=exc.as_message()) from None
    _nonzero(seq, code, _part("base_cell_sequence"))
    if community_code is not None and community != community_code:
        raise InvalidValue("code.base_cell_not_in_community", code=code, community=community_code, prefix=community)
    return code


def base_cell_code(community_code: str, seq: int, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the base cell code for the seq-th cell (1-based) of a community."""
    _check_community_code(community_code)
    limit = 10**profile.base_cell_seq_digits - 1
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= limit:
        raise InvalidValue(
            "code.base_cell_sequence", limit=limit, profile=profile.name, seq=seq, community=community_code
        )
    return f"{community_code}{seq:0{profile.base_cell_seq_digits}d}"


def check_work_cell_code(code: str, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the work cell code if it is department type + area code + sequence in the profile's digits."""
    _digits(code, _part("work_cell_code", profile=profile.name), profile.work_cell_digits)
    type_end = profile.work_cell_type_digits
    area_end = type_end + profile.community_digits
    _nonzero(code[:type_end], code, _part("department"))
    area = code[type_end:area_end]
    if area[:2] == "00":
        raise InvalidValue("code.work_cell_area_no_province", code=code, area=area)
    _nonzero(code[area_end:], code, _part("work_cell_sequence"))
    return code


def work_cell_parts(code: str, profile: CodeProfile = DEFAULT_PROFILE) -> tuple[str, str, int]:
    """Return (department code, area code, sequence) of a work cell code valid in the profile."""
    check_work_cell_code(code, profile)
    type_end = profile.work_cell_type_digits
    area_end = type_end + profile.community_digits
    return code[:type_end], code[type_end:area_end], int(code[area_end:])


def work_cell_sequence_limit(profile: CodeProfile = DEFAULT_PROFILE) -> int:
    """Return the highest work cell sequence the profile has room for (99 for 2 digits)."""
    return 10**profile.work_cell_seq_digits - 1


def work_cell_area_code(admin_code: str, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the area part of a work cell code for an admin unit: its code padded with zeros.

    A community is its own 12-digit code; a street is its code + 000, a district or city its
    code + 000000.
    """
    admin_level_of_code(admin_code)
    return admin_code.ljust(profile.community_digits, "0")


def area_admin_code(area: str, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the admin unit code that the area part of a work cell code names (padding removed).

    Street and community parts never are all zeros, so the padding is unambiguous:
    440304001002 is a community, 440304001000 the street 440304001, 440304000000 the district 440304.
    """
    _digits(area, _part("area_code"), profile.community_digits)
    if area.endswith("0" * (STREET_DIGITS + COMMUNITY_PART_DIGITS)):
        return area[:COUNTY_DIGITS]
    if area.endswith("0" * COMMUNITY_PART_DIGITS):
        return area[: COUNTY_DIGITS + STREET_DIGITS]
    return area


def street_code_of(admin_code: str) -> str | None:
    """Return the street code (9 digits) of a street or community code, None for a district or city."""
    street_end = COUNTY_DIGITS + STREET_DIGITS
    return admin_code[:street_end] if len(admin_code) >= street_end else None


def work_cell_code(dept_code: str, area_code: str, seq: int, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the work cell code for the seq-th (1-based) work cell of a department in an area."""
    _digits(dept_code, _part("department_code"), profile.work_cell_type_digits)
    _nonzero(dept_code, dept_code, _part("department_code"))
    _digits(area_code, _part("area_code"), profile.community_digits)
    limit = work_cell_sequence_limit(profile)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= limit:
        raise InvalidValue(
            "code.work_cell_sequence", limit=limit, profile=profile.name, seq=seq, dept=dept_code, area=area_code
        )
    return check_work_cell_code(f"{dept_code}{area_code}{seq:0{profile.work_cell_seq_digits}d}", profile)


def check_component_code(code: str) -> str:
    """Return the 16-digit component code (county + major 01-06 + minor + serial) if it is well formed."""
    _digits(code, _part("component_code"), 16)
    county, major, minor, serial = code[:6], code[6:8], code[8:10], code[10:]
    if county[:2] == "00" or county.endswith("00"):
        raise InvalidValue("code.component_county", code=code, county=county)
    if major not in COMPONENT_MAJOR_CLASSES:
        raise InvalidValue("code.component_major", code=code, major=major)
    _nonzero(minor, code, _part("minor_class"))
    _nonzero(serial, code, _part("serial"))
    return code
