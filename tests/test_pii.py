"""One rule for personal fields leaving the system: masked, or clear and audited."""

from __future__ import annotations

from gridkit.audit import PERSONAL_DATA_READ, recent
from gridkit.pii import mask_or_reveal


def _rows():
    return [{"name": "张伟", "phone": "13812345678"}, {"name": "李娜", "phone": None}]


def test_masked_unless_revealed_and_nothing_audited(session):
    rows = mask_or_reveal(session, _rows(), reveal=False, actor="cli:test", object_type="coordinator")
    assert [r["phone"] for r in rows] == ["138****5678", None]
    session.flush()
    assert recent(session, action=PERSONAL_DATA_READ) == []


def test_a_reveal_is_one_audit_row(session):
    rows = mask_or_reveal(session, _rows(), reveal=True, actor="web:planner", object_type="coordinator", dept="100001")
    assert rows[0]["phone"] == "13812345678"
    session.flush()
    (row,) = recent(session, action=PERSONAL_DATA_READ)
    assert (row.actor, row.object_type) == ("web:planner", "coordinator")
    assert row.detail == {"detail_fields": ["phone"], "count": 2, "dept": "100001"}


def test_revealing_nothing_is_not_audited(session):
    assert mask_or_reveal(session, [], reveal=True, actor="cli:test", object_type="coordinator") == []
    session.flush()
    assert recent(session, action=PERSONAL_DATA_READ) == []


def test_phone_and_id_numbers_inside_free_text_are_masked_and_codes_kept():
    from gridkit.pii import mask_personal_text

    text = "王小明 13800138000 / +86 139 0013 9000，座机 0755 83211234、020-87654321，身份证 44030419900101123X"
    assert mask_personal_text(text) == (
        "王小明 138****8000 / 139****9000，座机 0755-****1234、020-****4321，身份证 4403**********123X"
    )
    codes = "SJ202612050000004 基础网格 440304001001001 工作网格 20000144030400100101 部件 4403040101000001"
    assert mask_personal_text(codes) == codes
    assert mask_personal_text(None) is None and mask_personal_text("") == ""
