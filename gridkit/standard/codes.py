"""Code layouts of admin units, base cells, work cells and components, as data (see DESIGN.md).

- community: 6-digit county (GB/T 2260) + 3-digit street + 3-digit community = 12 digits;
- base cell: community code + sequence (3 digits by default as in DB11; 2 digits in CJ/T 213-2005);
- work cell: 6-digit department/service type + 12-digit area code + 2-digit sequence (CJ/T 349-2010);
- component: 6-digit county + 2-digit major class 01-06 + 2-digit minor class + 6-digit serial
  (CJ/T 214 / GB/T 30428.2).

Checkers return the code and raise ValueError with a message saying what is wrong.
Sequences start at 1: an all-zero sequence or class part is never a valid code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CodeProfile",
    "PROFILES",
    "DEFAULT_PROFILE",
    "admin_level_of_code",
    "check_base_cell_code",
    "base_cell_code",
    "check_work_cell_code",
    "work_cell_code",
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


def _digits(code, what: str, length: int) -> str:
    if not isinstance(code, str):
        raise ValueError(f"{what} must be text, got {type(code).__name__} {code!r}.")
    if len(code) != length or not code.isascii() or not code.isdigit():
        raise ValueError(f"{what} must be {length} digits, got {code!r}.")
    return code


def _nonzero(part: str, code: str, what: str) -> None:
    if set(part) == {"0"}:
        raise ValueError(f"{what} of {code} is {part}; numbering starts at {'0' * (len(part) - 1)}1.")


def admin_level_of_code(code: str) -> str:
    """Return the admin level a code denotes: 'city' or 'district' (6 digits), 'street' (9), 'community' (12).

    A 6-digit code ending in '0000' is a province and one ending in '00' a prefecture-level city
    (GB/T 2260); any other 6-digit code is a district or county.
    """
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise ValueError(f"Admin unit code must be digits, got {code!r}.")
    if len(code) == COUNTY_DIGITS:
        if code[:2] == "00":
            raise ValueError(f"Admin unit code {code} has no province part.")
        if code.endswith("0000"):
            return "province"
        return "city" if code.endswith("00") else "district"
    if len(code) == COUNTY_DIGITS + STREET_DIGITS:
        _nonzero(code[6:9], code, "Street part")
        return "street"
    if len(code) == COUNTY_DIGITS + STREET_DIGITS + COMMUNITY_PART_DIGITS:
        _nonzero(code[6:9], code, "Street part")
        _nonzero(code[9:12], code, "Community part")
        return "community"
    raise ValueError(
        f"Admin unit code {code} has {len(code)} digits; expected 6 (city/district), 9 (street) or 12 (community)."
    )


def _check_community_code(code: str, what: str = "Community code") -> str:
    _digits(code, what, COUNTY_DIGITS + STREET_DIGITS + COMMUNITY_PART_DIGITS)
    admin_level_of_code(code)  # refuses all-zero street or community parts
    return code


def check_base_cell_code(code: str, profile: CodeProfile = DEFAULT_PROFILE, community_code: str | None = None) -> str:
    """Return the base cell code if it fits the profile (and lies in community_code, if given)."""
    _digits(code, f"Base cell code ({profile.name} profile)", profile.base_cell_digits)
    community, seq = code[: profile.community_digits], code[profile.community_digits :]
    try:
        _check_community_code(community)
    except ValueError as exc:
        raise ValueError(f"Base cell code {code}: {exc}") from None
    _nonzero(seq, code, "Base cell sequence")
    if community_code is not None and community != community_code:
        raise ValueError(f"Base cell code {code} is not in community {community_code}: it starts with {community}.")
    return code


def base_cell_code(community_code: str, seq: int, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the base cell code for the seq-th cell (1-based) of a community."""
    _check_community_code(community_code)
    limit = 10**profile.base_cell_seq_digits - 1
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= limit:
        raise ValueError(
            f"Base cell sequence must be 1 to {limit} in the {profile.name} profile, got {seq!r} "
            f"(community {community_code})."
        )
    return f"{community_code}{seq:0{profile.base_cell_seq_digits}d}"


def check_work_cell_code(code: str, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the work cell code if it is department type + area code + sequence in the profile's digits."""
    _digits(code, f"Work cell code ({profile.name} profile)", profile.work_cell_digits)
    type_end = profile.work_cell_type_digits
    area_end = type_end + profile.community_digits
    _nonzero(code[:type_end], code, "Department part")
    area = code[type_end:area_end]
    if area[:2] == "00":
        raise ValueError(f"Work cell code {code}: area part {area} has no province part.")
    _nonzero(code[area_end:], code, "Work cell sequence")
    return code


def work_cell_code(dept_code: str, area_code: str, seq: int, profile: CodeProfile = DEFAULT_PROFILE) -> str:
    """Return the work cell code for the seq-th (1-based) work cell of a department in an area."""
    _digits(dept_code, "Department code", profile.work_cell_type_digits)
    _nonzero(dept_code, dept_code, "Department code")
    _digits(area_code, "Area code", profile.community_digits)
    limit = 10**profile.work_cell_seq_digits - 1
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= limit:
        raise ValueError(
            f"Work cell sequence must be 1 to {limit} in the {profile.name} profile, got {seq!r} "
            f"(department {dept_code}, area {area_code})."
        )
    return check_work_cell_code(f"{dept_code}{area_code}{seq:0{profile.work_cell_seq_digits}d}", profile)


def check_component_code(code: str) -> str:
    """Return the 16-digit component code (county + major 01-06 + minor + serial) if it is well formed."""
    _digits(code, "Component code", 16)
    county, major, minor, serial = code[:6], code[6:8], code[8:10], code[10:]
    if county[:2] == "00" or county.endswith("00"):
        raise ValueError(f"Component code {code}: {county} is not a county/district code.")
    if major not in COMPONENT_MAJOR_CLASSES:
        raise ValueError(f"Component code {code}: major class {major} is not one of 01-06.")
    _nonzero(minor, code, "Minor class")
    _nonzero(serial, code, "Serial")
    return code
