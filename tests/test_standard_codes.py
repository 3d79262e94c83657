"""Code layouts and the category table: admin units, base cells, work cells, components (no database)."""

import dataclasses

import pytest

from gridkit.incidents.actors import Actor
from gridkit.models import User
from gridkit.standard.categories import Category, load_categories
from gridkit.standard.codes import (
    COMPONENT_MAJOR_CLASSES,
    DEFAULT_PROFILE,
    PROFILES,
    CodeProfile,
    admin_code_prefix,
    admin_level_of_code,
    base_cell_code,
    check_base_cell_code,
    check_component_code,
    check_work_cell_code,
    work_cell_code,
)
from gridkit.users import may_see_personal_data

COMMUNITY = "440304001002"
CJT213 = PROFILES["cjt213"]


def test_profiles():
    assert DEFAULT_PROFILE is PROFILES["default"]
    assert DEFAULT_PROFILE.base_cell_digits == 15
    assert DEFAULT_PROFILE.work_cell_digits == 20
    assert CJT213.base_cell_digits == 14
    assert CJT213.work_cell_digits == 20


def test_profile_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PROFILE.base_cell_seq_digits = 4


def test_custom_profile():
    profile = CodeProfile("wide", base_cell_seq_digits=4, work_cell_seq_digits=3)
    assert profile.base_cell_digits == 16 and profile.work_cell_digits == 21
    assert base_cell_code(COMMUNITY, 1234, profile) == COMMUNITY + "1234"


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("440300", "city"),
        ("440304", "district"),
        ("441900", "city"),
        ("440000", "province"),
        ("440304001", "street"),
        ("440304001002", "community"),
    ],
)
def test_admin_level_of_code(code, level):
    assert admin_level_of_code(code) == level


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("4403", "4 digits; expected 6"),
        ("4403040010", "10 digits"),
        ("44030A", "must be digits"),
        ("", "must be digits"),
        (440304, "must be digits"),
        ("001234", "no province part"),
        ("440304000", "Street part of 440304000 is 000"),
        ("440304000001", "Street part"),
        ("440304001000", "Community part of 440304001000 is 000; numbering starts at 001"),
    ],
)
def test_admin_level_of_code_errors(code, message):
    with pytest.raises(ValueError, match=message):
        admin_level_of_code(code)


def test_base_cell_code_default_and_cjt213():
    assert base_cell_code(COMMUNITY, 7) == "440304001002007"
    assert base_cell_code(COMMUNITY, 7, CJT213) == "44030400100207"
    assert base_cell_code(COMMUNITY, 999) == "440304001002999"
    assert check_base_cell_code("440304001002007") == "440304001002007"
    assert check_base_cell_code("44030400100207", CJT213, community_code=COMMUNITY) == "44030400100207"


@pytest.mark.parametrize("seq", [0, 1000, -1, 1.0, "1", True])
def test_base_cell_code_bad_sequence(seq):
    with pytest.raises(ValueError, match="Base cell sequence must be 1 to 999"):
        base_cell_code(COMMUNITY, seq)


def test_base_cell_code_cjt213_limit():
    with pytest.raises(ValueError, match="1 to 99 in the cjt213 profile"):
        base_cell_code(COMMUNITY, 100, CJT213)


def test_base_cell_code_bad_community():
    with pytest.raises(ValueError, match="Community code must be 12 digits"):
        base_cell_code("440304001", 1)
    with pytest.raises(ValueError, match="Community part"):
        base_cell_code("440304001000", 1)


@pytest.mark.parametrize(
    ("code", "profile", "community", "message"),
    [
        ("44030400100200", DEFAULT_PROFILE, None, r"must be 15 digits, got '44030400100200'"),
        ("440304001002007", CJT213, None, r"\(cjt213 profile\) must be 14 digits"),
        ("44030400100200x", DEFAULT_PROFILE, None, "must be 15 digits"),
        ("440304001002000", DEFAULT_PROFILE, None, "Base cell sequence of 440304001002000 is 000"),
        ("440304000002001", DEFAULT_PROFILE, None, "Base cell code 440304000002001: Street part"),
        ("440304001003001", DEFAULT_PROFILE, COMMUNITY, "not in community 440304001002: it starts with 440304001003"),
    ],
)
def test_check_base_cell_code_errors(code, profile, community, message):
    with pytest.raises(ValueError, match=message):
        check_base_cell_code(code, profile, community_code=community)


def test_work_cell_code():
    code = work_cell_code("100001", COMMUNITY, 2)
    assert code == "10000144030400100202"
    assert len(code) == 20
    assert check_work_cell_code(code) == code
    # An area may be a street written as 12 digits (street code + 000).
    assert check_work_cell_code("200001440304001000" + "01") == "20000144030400100001"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1000014403040010020", "must be 20 digits"),
        ("00000044030400100201", "Department part of 00000044030400100201 is 000000"),
        ("10000100030400100201", "area part 000304001002 has no province part"),
        ("10000144030400100200", "Work cell sequence of 10000144030400100200 is 00"),
    ],
)
def test_check_work_cell_code_errors(code, message):
    with pytest.raises(ValueError, match=message):
        check_work_cell_code(code)


def test_work_cell_code_errors():
    with pytest.raises(ValueError, match="Department code must be 6 digits"):
        work_cell_code("1001", COMMUNITY, 1)
    with pytest.raises(ValueError, match="Department code of 000000 is 000000"):
        work_cell_code("000000", COMMUNITY, 1)
    with pytest.raises(ValueError, match="Area code must be 12 digits"):
        work_cell_code("100001", "440304", 1)
    with pytest.raises(ValueError, match="Work cell sequence must be 1 to 99"):
        work_cell_code("100001", COMMUNITY, 100)


def test_check_component_code():
    assert check_component_code("4403040101000001") == "4403040101000001"
    assert check_component_code("4403040612999999") == "4403040612999999"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("440304010100001", "must be 16 digits"),
        ("440304010100000A", "must be 16 digits"),
        ("4403000101000001", "440300 is not a county/district code"),
        ("4403040001000001", "major class 00 is not one of 01-06"),
        ("4403040701000001", "major class 07"),
        ("4403040100000001", "Minor class of 4403040100000001 is 00"),
        ("4403040101000000", "Serial of 4403040101000000 is 000000"),
    ],
)
def test_check_component_code_errors(code, message):
    with pytest.raises(ValueError, match=message):
        check_component_code(code)


# --- category table (gridkit/standard/categories.csv) -----------------------------------------------

HEADER = "code,kind,major_code,major_name,name,time_limit_hours\n"


def _write(tmp_path, body: str, header: str = HEADER):
    path = tmp_path / "categories.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_seed_categories_load():
    categories = load_categories()
    by_code = {c.code: c for c in categories}
    assert len(by_code) == len(categories) > 60
    assert by_code["0101"] == Category(
        "0101",
        "component",
        "01",
        "公用设施",
        "上水井盖",
        8,  # a day's limit, in working hours
        "200001",
        (("accept", 2), ("classify", 2), ("dispatch", 4), ("verify", 8)),
    )
    assert by_code["E0101"].name == "暴露垃圾" and by_code["E0101"].kind == "event"
    components = {c.major_code: c.major_name for c in categories if c.kind == "component"}
    assert components == COMPONENT_MAJOR_CLASSES
    events = {c.major_code: c.major_name for c in categories if c.kind == "event"}
    assert events == {
        "01": "市容环境",
        "02": "宣传广告",
        "03": "施工管理",
        "04": "突发事件",
        "05": "街面秩序",
        "06": "其他事件",
    }
    for kind in ("component", "event"):
        for major in ("01", "02", "03", "04", "05", "06"):
            minors = [c for c in categories if c.kind == kind and c.major_code == major]
            assert 5 <= len(minors) <= 8, (kind, major)


def test_seed_component_categories_fit_component_codes():
    for category in load_categories():
        if category.kind == "component":
            assert check_component_code(f"440304{category.code}000001")


def test_categories_accept_bom_and_blank_lines(tmp_path):
    path = tmp_path / "categories.csv"
    path.write_text("\ufeff" + HEADER + "0101,component,01,公用设施,上水井盖,24\n\n", encoding="utf-8")
    assert [c.code for c in load_categories(path)] == ["0101"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "0101,component,01,公用设施,上水井盖,24\n0101,component,01,公用设施,污水井盖,24\n",
            "line 3: code 0101 already appears on line 2",
        ),
        ("0101,part,01,公用设施,上水井盖,24\n", "line 2: kind 'part' is not one of component, event"),
        ("E0101,component,01,公用设施,上水井盖,24\n", "line 2: component code 'E0101' must look like '0101'"),
        ("0101,event,01,市容环境,暴露垃圾,4\n", "event code '0101' must look like 'E0101'"),
        ("0201,component,01,公用设施,上水井盖,24\n", "code 0201 does not start with its major class '01'"),
        ("0100,component,01,公用设施,上水井盖,24\n", "major and minor classes start at 01"),
        ("0701,component,07,扩展设施,雕塑,24\n", "component major class 07 is not one of 01-06"),
        ("0101,component,01,公用设施,上水井盖,1.5\n", "time_limit_hours '1.5' is not a whole number"),
        ("0101,component,01,公用设施,上水井盖,0\n", "time_limit_hours must be positive, got 0"),
        ("0101,component,01,公用设施,,24\n", "line 2: name is empty"),
        ("0101,component,01,公用设施\n", "name is empty"),
        ("0101,component,01,公用设施,上水井盖,24,x\n", "line 2: more fields"),
        (
            "0101,component,01,公用设施,上水井盖,24\n0102,component,01,公共设施,污水井盖,24\n",
            "line 3: component major class 01 is named '公共设施' here but '公用设施' on line 2",
        ),
        ("", "no categories"),
    ],
)
def test_bad_category_rows(tmp_path, body, message):
    path = _write(tmp_path, body)
    with pytest.raises(ValueError, match=message):
        load_categories(path)


def test_bad_category_header(tmp_path):
    path = _write(tmp_path, "0101,component,01,公用设施,上水井盖,24\n", header="code,kind,major,name\n")
    with pytest.raises(ValueError, match="missing major_code, major_name, time_limit_hours"):
        load_categories(path)


def test_event_major_classes_may_be_extended(tmp_path):
    # Event tables are data: a deployment may add a major class beyond the standard's six.
    path = _write(tmp_path, "E0701,event,07,扩展事件,共享单车乱停放,4\n")
    assert load_categories(path)[0].major_name == "扩展事件"


@pytest.mark.parametrize(
    ("scope", "inside", "outside"),
    [
        ("440000", "440304001001", "450304001001"),  # a province: its cities' districts
        ("440300", "440304001001", "440404001001"),  # a prefecture-level city: its districts (4403xx)
        ("440304", "440304001001", "440305001001"),  # a district
        ("440304001", "440304001002", "440304002001"),  # a street
    ],
)
def test_a_scope_covers_every_code_under_it(scope, inside, outside):
    # A city-scoped user sees its districts' cases and personal data (the city's own code is no prefix of theirs).
    prefix = admin_code_prefix(scope)
    assert inside.startswith(prefix) and not outside.startswith(prefix)
    user = User(name="u", role="supervisor", scope_code=scope)
    assert may_see_personal_data(user, inside) and not may_see_personal_data(user, outside)
    actor = Actor("u", "supervisor", scope)
    assert actor.covers(inside) and not actor.covers(outside)
