"""Citizen IDs, credit codes and phone numbers (pure functions, no database)."""

from datetime import date

import numpy as np
import pytest

from gridkit.standard.ids import (
    citizen_id_check_char,
    citizen_ids_valid,
    credit_code_check_char,
    credit_codes_valid,
    mask_citizen_id,
    mask_phone,
    organization_code_check_char,
    validate_citizen_id,
    validate_credit_code,
    validate_phone,
)

TODAY = date(2026, 11, 1)

# --- citizen IDs ------------------------------------------------------------------------------------

# The worked example printed in GB 11643-1999 ends in 'X'; the others were computed with the
# weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 by hand and checked against citizen_id_check_char.
VALID_IDS = ["11010519491231002X", "440304199001011233", "440304200002290049"]


@pytest.mark.parametrize("number", VALID_IDS)
def test_valid_citizen_ids(number):
    assert validate_citizen_id(number, today=TODAY) == number


def test_check_char_worked_example():
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 % 11 = 2 -> 'X'
    assert citizen_id_check_char("11010519491231002") == "X"
    assert citizen_id_check_char("44030419900101123") == "3"


def test_lower_case_x_and_whitespace_are_normalised():
    assert validate_citizen_id(" 11010519491231002x ", today=TODAY) == "11010519491231002X"


def test_full_width_characters_are_read_as_ascii():
    # Typed with a Chinese input method: full-width digits and letters, an ideographic space.
    assert validate_citizen_id("\u3000１１０１０５１９４９１２３１００２ｘ", today=TODAY) == "11010519491231002X"
    assert validate_credit_code("９１４４０３００７１５２６７２６ＸＧ") == "9144030071526726XG"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("4403041990010112", "must be 18 characters, got 16"),
        ("440304900101123", r"got 15 \(old 15-digit"),
        ("4403041990O101123X", "position 11 is 'O'"),
        ("44030419900101123Y", "must end in a digit or 'X', got 'Y'"),
        ("990304199001011230", "no province has code 99"),
        ("440304199002301234", "birth date 19900230 is not a real date"),
        ("440304189912311234", "1899-12-31 is before 1900"),
        ("440304202701011234", "2027-01-01 is in the future"),
        ("440304199001011234", "expected '3', got '4'"),
        ("110105194912310023", "expected 'X', got '3'"),
    ],
)
def test_invalid_citizen_ids(number, message):
    with pytest.raises(ValueError, match=message):
        validate_citizen_id(number, today=TODAY)


def test_citizen_id_not_text():
    with pytest.raises(ValueError, match="must be text"):
        validate_citizen_id(440304199001011233)


def test_check_char_needs_17_digits():
    with pytest.raises(ValueError, match="17 digits"):
        citizen_id_check_char("4403041990010112")
    with pytest.raises(ValueError, match="17 digits"):
        citizen_id_check_char("4403041990010112A")


def test_default_today_refuses_far_future():
    with pytest.raises(ValueError, match="in the future"):
        validate_citizen_id("44030421000101" + "001" + citizen_id_check_char("44030421000101001"))


def test_mask_citizen_id():
    assert mask_citizen_id("440304199001011233") == "4403**********1233"
    assert mask_citizen_id("11010519491231002x") == "1101**********002X"
    with pytest.raises(ValueError, match="18 characters"):
        mask_citizen_id("4403041990")


# --- unified social credit codes --------------------------------------------------------------------

# Published codes (Tencent's Shenzhen company, the usual Fuzhou textbook example) and one built here.
VALID_CREDIT_CODES = ["9144030071526726XG", "91350100M000100Y43", "91440304MA5G0D0KXY"]


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_valid_credit_codes(code):
    assert validate_credit_code(code) == code
    assert credit_code_check_char(code[:17]) == code[17]


def test_credit_code_lower_case_is_normalised():
    assert validate_credit_code(" 9144030071526726xg") == "9144030071526726XG"


def test_credit_check_char_wraps_31_to_zero():
    # A body whose weighted sum is a multiple of 31 has check value 0, not 31.
    assert credit_code_check_char("00000000000000000") == "0"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("9144030071526726X", "must be 18 characters, got 17"),
        ("9144030071526726XGG", "must be 18 characters, got 19"),
        ("91440300I1526726XG", "position 9 is 'I'"),
        ("9144030071526726XO", "position 18 is 'O'"),
        ("914403Z071526726XG", "position 7 is 'Z'"),
        ("91A4030071526726XG", "positions 3-8 must be a 6-digit region code"),
        ("9144030071526726XH", "expected 'G', got 'H'"),
        ("91440300715267260G", "check character is wrong"),
    ],
)
def test_invalid_credit_codes(code, message):
    with pytest.raises(ValueError, match=message):
        validate_credit_code(code)


def test_credit_check_char_needs_17_valid_characters():
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_char("914403007152672")
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_char("9144030071526726S")


def test_organization_code_check_char():
    # Positions 9-17 of a credit code are a GB 11714 organisation code with its own check character.
    assert organization_code_check_char("71526726") == "X"
    assert organization_code_check_char("M000100Y") == "4"
    with pytest.raises(ValueError, match="8 digits"):
        organization_code_check_char("7152672")


# --- phones -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "normalised"),
    [
        ("13800138000", "13800138000"),
        ("199 1234 5678", "19912345678"),
        ("0755-12345678", "0755-12345678"),
        ("075583456789", "0755-83456789"),
        ("010-6512345", "010-6512345"),
        ("020 87654321", "020-87654321"),
        # Forms found in real registers: full-width digits, the country code, an area code in parentheses.
        ("１３８００１３８０００", "13800138000"),
        ("０７５５－１２３４５６７８", "0755-12345678"),
        ("+86 138-0013-8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("86 13800138000", "13800138000"),
        ("(+86) 13800138000", "13800138000"),
        ("0086 755 12345678", "0755-12345678"),
        ("+86-755-8345-6789", "0755-83456789"),
        ("+86 10 6512345", "010-6512345"),
        ("(0755) 1234 5678", "0755-12345678"),
        ("（０７５５）１２３４５６７８", "0755-12345678"),
    ],
)
def test_valid_phones(phone, normalised):
    assert validate_phone(phone) == normalised


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("1380013800", "must have 11 digits, got 10"),
        ("12800138000", "must start with 13-19"),
        ("138001380a0", "only digits"),
        ("0755-0123456", "not starting with 0"),
        ("0755-123456", "7- or 8-digit local number"),
        ("07551-2345678", "expected '0755'"),
        ("85512345678", "11-digit mobile"),
        ("+1 415 555 0100", "only digits"),
        ("(755) 83456789", "only digits"),
        ("+86 1380013800", "must have 11 digits, got 10"),
        ("861380013800", "11-digit mobile"),
        ("", "is empty"),
        ("  -  ", "is empty"),
    ],
)
def test_invalid_phones(phone, message):
    with pytest.raises(ValueError, match=message):
        validate_phone(phone)


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0755-12345678") == "0755-****5678"
    with pytest.raises(ValueError):
        mask_phone("123")


def test_bulk_citizen_id_check_agrees_with_the_one_by_one_check():
    # Valid IDs, and each corrupted one way: a digit, the check character, the region, the birth date.
    rng = np.random.default_rng(11643)
    rows = []
    for _ in range(3000):
        body = f"{rng.choice(['11', '44', '65', '83', '10', '99'])}{rng.integers(0, 10**4):04d}"
        body += (
            f"{rng.integers(1890, 2030)}{rng.integers(0, 14):02d}{rng.integers(0, 33):02d}{rng.integers(0, 1000):03d}"
        )
        number = body + citizen_id_check_char(body)
        roll = rng.integers(0, 4)
        if roll == 1:
            number = number[:17] + rng.choice(list("0123456789X"))
        elif roll == 2:
            at = int(rng.integers(0, 17))
            number = number[:at] + str(rng.integers(0, 10)) + number[at + 1 :]
        elif roll == 3:
            number = number[:10] + "0229" + number[14:17] + citizen_id_check_char(number[:10] + "0229" + number[14:17])
        rows.append(number)
    rows += ["11010519491231002A", "1101051949123100 X", "１１０１０５１９４９１２３１００２X"[:18]]

    def one_by_one(number):
        try:
            return validate_citizen_id(number, today=TODAY) == number
        except ValueError:
            return False

    chars = np.array([list(r.encode("utf-8")[:18].ljust(18, b" ")) for r in rows], dtype=np.uint8)
    bulk = citizen_ids_valid(chars, today=TODAY)
    expected = np.array([one_by_one(r) for r in rows])
    assert 500 < expected.sum() < len(rows) - 500  # both kinds well represented
    assert (bulk == expected).all(), [r for r, b, e in zip(rows, bulk, expected) if b != e][:5]


def test_bulk_credit_code_check_agrees_with_the_one_by_one_check():
    # Valid codes, and each corrupted one way: a character, the check character, a letter in the region,
    # a character GB 32100 leaves out (I O S V Z), lower case (normalised one by one: not clean as written).
    rng = np.random.default_rng(32100)
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    rows = []
    for _ in range(3000):
        body = "".join(rng.choice(list(chars), 2)) + f"{rng.integers(0, 10**6):06d}"
        body += "".join(rng.choice(list(chars), 9))
        code = body + credit_code_check_char(body)
        roll = rng.integers(0, 8)  # 0, 6, 7: left valid
        at = int(rng.integers(0, 17))
        if roll == 1:
            code = code[:17] + rng.choice(list(chars))
        elif roll == 2:
            code = code[:at] + rng.choice(list(chars)) + code[at + 1 :]
        elif roll == 3:
            code = code[:4] + "A" + code[5:17] + credit_code_check_char(code[:4] + "A" + code[5:17])
        elif roll == 4:
            code = code[:at] + rng.choice(list("IOSVZ")) + code[at + 1 :]
        elif roll == 5:
            code = code.lower()
        rows.append(code)

    def as_written(code):
        try:
            return validate_credit_code(code) == code
        except ValueError:
            return False

    bulk = credit_codes_valid(np.array([list(r.encode("ascii")) for r in rows], dtype=np.uint8))
    expected = np.array([as_written(r) for r in rows])
    assert 500 < expected.sum() < len(rows) - 500  # both kinds well represented
    assert (bulk == expected).all(), [r for r, b, e in zip(rows, bulk, expected) if b != e][:5]
