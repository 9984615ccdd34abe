"""Tests for the validators of personal data; no database or app needed."""

import datetime
import random
import unicodedata

import pytest

from models.validation import CCCD_PROVINCE_CODES
from models.validation import FieldError
from models.validation import is_portal_health_code
from models.validation import luhn_check_digit
from models.validation import new_health_code
from models.validation import normalize_email
from models.validation import normalize_gender
from models.validation import normalize_health_code
from models.validation import normalize_insurance_number
from models.validation import normalize_national_id
from models.validation import normalize_phone
from models.validation import parse_date
from models.validation import validate_birth_date
from models.validation import validate_cccd
from models.validation import validate_cmnd

# A man born in 1990 registered in Hà Nội (001) and a woman born in 2001 in Quảng Ninh (022).
CCCD_MAN_1990 = "001090012345"
CCCD_WOMAN_2001 = "022301012345"


def test_field_error_is_a_value_error_with_field_and_message():
    with pytest.raises(FieldError) as caught:
        normalize_phone("123")
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "phone"
    assert str(caught.value) == str(caught.value.message)
    assert "10 digits" in str(caught.value)


# Phone numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0912345678", "0912345678"),
        ("0912 345 678", "0912345678"),
        ("091.234.5678", "0912345678"),
        ("091-234-5678", "0912345678"),
        ("(091) 234 5678", "0912345678"),
        (" 0321234567 ", "0321234567"),
        ("0391234567", "0391234567"),
        ("0521234567", "0521234567"),
        ("0591234567", "0591234567"),
        ("0701234567", "0701234567"),
        ("0761234567", "0761234567"),
        ("0811234567", "0811234567"),
        ("0891234567", "0891234567"),
        ("0901234567", "0901234567"),
        ("0991234567", "0991234567"),
    ],
)
def test_phone_valid_mobile_numbers_are_normalized(value, expected):
    assert normalize_phone(value) == expected


@pytest.mark.parametrize("value", ["+84912345678", "+84 912 345 678", "84912345678", "84 91 234 5678", "0912345678"])
def test_phone_with_plus84_prefix_is_the_same_number(value):
    assert normalize_phone(value) == "0912345678"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_phone_blank_is_none(value):
    assert normalize_phone(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "0241234567",  # landline area code
        "0311234567",
        "0501234567",
        "0531234567",
        "0711234567",
        "0801234567",
        "091234567",  # 9 digits
        "09123456789",  # 11 digits
        "912345678",  # leading 0 lost
        "+8412345678",
        "+840912345678",
        "0912a45678",
        "0912/345678",
        "phone",
    ],
)
def test_phone_invalid_numbers_raise(value):
    with pytest.raises(FieldError) as caught:
        normalize_phone(value)
    assert caught.value.field == "phone"


def test_phone_error_names_the_given_field():
    with pytest.raises(FieldError) as caught:
        normalize_phone("123", field="contact_phone")
    assert caught.value.field == "contact_phone"


# CCCD and CMND


def test_cccd_province_codes_are_the_63_provinces():
    assert len(CCCD_PROVINCE_CODES) == 63


@pytest.mark.parametrize("value", [CCCD_MAN_1990, CCCD_WOMAN_2001, "096199000001", " 001090012345 "])
def test_cccd_valid_numbers_are_returned(value):
    assert validate_cccd(value) == value.strip()


@pytest.mark.parametrize("value", ["", "00109001234", "0010900123456", "00109001234a", "001 090 012 345"])
def test_cccd_wrong_length_or_characters_raise(value):
    with pytest.raises(FieldError, match="12 digits") as caught:
        validate_cccd(value)
    assert caught.value.field == "national_id"


@pytest.mark.parametrize("value", ["000090012345", "003090012345", "097090012345", "100090012345"])
def test_cccd_unknown_province_code_raises(value):
    with pytest.raises(FieldError, match=value[:3]) as caught:
        validate_cccd(value)
    assert caught.value.field == "national_id"
    assert "province" in str(caught.value)


@pytest.mark.parametrize(
    ("digit", "year", "gender"),
    [
        ("0", 1945, "M"),
        ("1", 1945, "F"),
        ("2", 2045, "M"),
        ("3", 2045, "F"),
        ("4", 2145, "M"),
        ("5", 2145, "F"),
        ("6", 2245, "M"),
        ("7", 2245, "F"),
        ("8", 1845, "M"),
        ("9", 1845, "F"),
    ],
)
def test_cccd_century_and_gender_digit(digit, year, gender):
    number = f"001{digit}45000001"
    other_gender = "F" if gender == "M" else "M"
    assert validate_cccd(number, date_of_birth=datetime.date(year, 7, 1), gender=gender) == number
    with pytest.raises(FieldError, match="born in"):
        validate_cccd(number, date_of_birth=datetime.date(year + 100, 7, 1))
    with pytest.raises(FieldError, match="gender"):
        validate_cccd(number, gender=other_gender)


@pytest.mark.parametrize(
    ("value", "born"),
    [(CCCD_MAN_1990, datetime.date(1990, 3, 15)), (CCCD_WOMAN_2001, datetime.date(2001, 12, 31))],
)
def test_cccd_matching_birth_year_is_accepted(value, born):
    assert validate_cccd(value, date_of_birth=born) == value


@pytest.mark.parametrize(
    ("value", "born"),
    [
        (CCCD_MAN_1990, datetime.date(1991, 1, 1)),
        (CCCD_MAN_1990, datetime.date(2090, 1, 1)),
        (CCCD_WOMAN_2001, datetime.date(1901, 1, 1)),
        (CCCD_WOMAN_2001, datetime.date(2000, 12, 31)),
    ],
)
def test_cccd_birth_year_mismatch_raises(value, born):
    with pytest.raises(FieldError, match="date of birth") as caught:
        validate_cccd(value, date_of_birth=born)
    assert caught.value.field == "national_id"


@pytest.mark.parametrize(("value", "gender"), [(CCCD_MAN_1990, "M"), (CCCD_WOMAN_2001, "F")])
def test_cccd_matching_gender_is_accepted(value, gender):
    assert validate_cccd(value, gender=gender) == value


@pytest.mark.parametrize(("value", "gender"), [(CCCD_MAN_1990, "F"), (CCCD_WOMAN_2001, "M")])
def test_cccd_gender_mismatch_raises(value, gender):
    with pytest.raises(FieldError, match="gender") as caught:
        validate_cccd(value, gender=gender)
    assert caught.value.field == "national_id"


def test_cccd_error_names_the_given_field():
    with pytest.raises(FieldError) as caught:
        validate_cccd(CCCD_MAN_1990, gender="F", field="guardian_national_id")
    assert caught.value.field == "guardian_national_id"


def test_cmnd_nine_digits_is_valid():
    assert validate_cmnd("123456789") == "123456789"


@pytest.mark.parametrize("value", ["", "12345678", "1234567890", "12345678a", "123 45678"])
def test_cmnd_not_nine_digits_raises(value):
    with pytest.raises(FieldError, match="9 digits") as caught:
        validate_cmnd(value)
    assert caught.value.field == "national_id"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (CCCD_MAN_1990, CCCD_MAN_1990),
        (" 001 090 012 345 ", CCCD_MAN_1990),
        ("123456789", "123456789"),
        ("123 456 789", "123456789"),
    ],
)
def test_national_id_accepts_cccd_or_cmnd_without_spaces(value, expected):
    assert normalize_national_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_national_id_blank_is_none(value):
    assert normalize_national_id(value) is None


@pytest.mark.parametrize("value", ["12345678", "1234567890", "12345678901", "0010900123456", "00109001234X"])
def test_national_id_other_lengths_raise(value):
    with pytest.raises(FieldError, match=r"9 digits \(CMND\) or 12 digits \(CCCD\)") as caught:
        normalize_national_id(value)
    assert caught.value.field == "national_id"


def test_national_id_checks_cccd_against_birth_date_and_gender():
    born = datetime.date(1990, 3, 15)
    assert normalize_national_id(CCCD_MAN_1990, date_of_birth=born, gender="M") == CCCD_MAN_1990
    with pytest.raises(FieldError, match="gender"):
        normalize_national_id(CCCD_MAN_1990, date_of_birth=born, gender="F")
    with pytest.raises(FieldError, match="province") as caught:
        normalize_national_id("003090012345", field="id_number")
    assert caught.value.field == "id_number"


# Health insurance (BHYT) card numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("DN4010123456789", "DN4010123456789"),
        (" dn 4 01 0123456789 ", "DN4010123456789"),
        ("HT1991234567890", "HT1991234567890"),
        ("TE5220000000001", "TE5220000000001"),
    ],
)
def test_insurance_number_valid_is_uppercased_without_spaces(value, expected):
    assert normalize_insurance_number(value) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_insurance_number_blank_is_none(value):
    assert normalize_insurance_number(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "DN0010123456789",  # benefit level 0
        "DN6010123456789",  # benefit level 6
        "DN4000123456789",  # province code 00
        "D14010123456789",
        "1N4010123456789",
        "DN401012345678",  # 14 characters
        "DN40101234567890",  # 16 characters
        "DN401012345678A",
        "DN4-010123456789",
    ],
)
def test_insurance_number_invalid_raises(value):
    with pytest.raises(FieldError, match="15 characters") as caught:
        normalize_insurance_number(value)
    assert caught.value.field == "insurance_number"


# Dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("25/12/1990", datetime.date(1990, 12, 25)),
        ("5/1/1990", datetime.date(1990, 1, 5)),
        ("05/01/1990", datetime.date(1990, 1, 5)),
        (" 29/02/2000 ", datetime.date(2000, 2, 29)),
        ("1990-12-25", datetime.date(1990, 12, 25)),
        (datetime.date(1990, 12, 25), datetime.date(1990, 12, 25)),
        (datetime.datetime(1990, 12, 25, 13, 30), datetime.date(1990, 12, 25)),
    ],
)
def test_parse_date_accepts_day_month_year_iso_and_dates(value, expected):
    parsed = parse_date(value)
    assert parsed == expected
    assert type(parsed) is datetime.date


@pytest.mark.parametrize("value", [None, "", "  "])
def test_parse_date_blank_is_none(value):
    assert parse_date(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "31/02/2000",
        "29/02/1900",
        "00/01/2000",
        "12/25/1990",
        "25-12-1990",
        "25.12.1990",
        "1990/12/25",
        "25/12/90",
        "1990-2-5",
        "yesterday",
        19901225,
    ],
)
def test_parse_date_invalid_raises_and_names_the_format(value):
    with pytest.raises(FieldError, match="dd/mm/yyyy") as caught:
        parse_date(value)
    assert caught.value.field == "date_of_birth"


def test_parse_date_error_names_the_given_field():
    with pytest.raises(FieldError) as caught:
        parse_date("soon", field="visit_date")
    assert caught.value.field == "visit_date"


TODAY = datetime.date(2025, 6, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01/06/2025", TODAY),
        ("01/01/1900", datetime.date(1900, 1, 1)),
        ("15/03/1990", datetime.date(1990, 3, 15)),
    ],
)
def test_birth_date_between_1900_and_today_is_accepted(value, expected):
    assert validate_birth_date(value, today=TODAY) == expected


def test_birth_date_in_the_future_raises():
    with pytest.raises(FieldError, match="future") as caught:
        validate_birth_date("02/06/2025", today=TODAY)
    assert caught.value.field == "date_of_birth"


def test_birth_date_before_1900_raises():
    with pytest.raises(FieldError, match="1900") as caught:
        validate_birth_date("31/12/1899", today=TODAY)
    assert caught.value.field == "date_of_birth"


def test_birth_date_blank_is_none_and_default_today_works():
    assert validate_birth_date("", today=TODAY) is None
    assert validate_birth_date(datetime.date(1990, 3, 15)) == datetime.date(1990, 3, 15)
    with pytest.raises(FieldError, match="dd/mm/yyyy"):
        validate_birth_date("15/13/1990")


# Email


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" Name@Example.COM ", "name@example.com"),
        ("nguyen.van.a+yte@soyte.quangninh.gov.vn", "nguyen.van.a+yte@soyte.quangninh.gov.vn"),
    ],
)
def test_email_is_stripped_and_lowercased(value, expected):
    assert normalize_email(value) == expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_email_blank_is_none(value):
    assert normalize_email(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "name",
        "name@example",
        "a@b@example.com",
        "name @example.com",
        "@example.com",
        "name@.com",
        "name@example.",
        "name@example..com",
    ],
)
def test_email_invalid_raises(value):
    with pytest.raises(FieldError, match="email") as caught:
        normalize_email(value)
    assert caught.value.field == "email"


# Health codes


@pytest.mark.parametrize(("digits", "check"), [("7992739871", "3"), ("0", "0"), ("22144272509", "1")])
def test_luhn_check_digit_known_values(digits, check):
    assert luhn_check_digit(digits) == check


def _luhn_valid(number):
    """The textbook check of a whole number: from the right, every second digit doubled (less 9 above 9)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_luhn_check_digit_makes_every_number_valid_and_no_other_digit_does():
    rng = random.Random(5)
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20)))
        check = luhn_check_digit(digits)
        assert _luhn_valid(digits + check), digits
        assert not any(_luhn_valid(digits + other) for other in "0123456789" if other != check), digits


@pytest.mark.parametrize("digits", ["", "12a4", "12 34", "١٢٣"])
def test_luhn_check_digit_refuses_non_digits(digits):
    with pytest.raises(ValueError):
        luhn_check_digit(digits)


def test_new_health_code_is_deterministic_with_a_seeded_random():
    assert new_health_code(22, random.Random(1)) == "221442725091"
    assert new_health_code(22, random.Random(1)) == new_health_code(22, random.Random(1))
    assert new_health_code(1, random.Random(1)) == "011442725096"


@pytest.mark.parametrize("province_code", [1, 22, 96])
def test_new_health_code_starts_with_the_province_code_and_validates(province_code):
    rng = random.Random(province_code)
    for _ in range(50):
        code = new_health_code(province_code, rng)
        assert len(code) == 12
        assert code.startswith(f"{province_code:02d}")
        assert is_portal_health_code(code)
        assert normalize_health_code(code) == code


@pytest.mark.parametrize("province_code", [0, 97, -1])
def test_new_health_code_refuses_unknown_province_codes(province_code):
    with pytest.raises(ValueError):
        new_health_code(province_code, random.Random(1))


def test_changing_one_digit_of_a_health_code_breaks_the_check_digit():
    code = new_health_code(22, random.Random(1))
    for position in range(12):
        changed = code[:position] + str((int(code[position]) + 1) % 10) + code[position + 1 :]
        assert not is_portal_health_code(changed), changed


@pytest.mark.parametrize(
    "code", [None, 221442725091, "", "22144272509", "2214427250911", "22144272509A", " 221442725091"]
)
def test_is_portal_health_code_refuses_other_shapes(code):
    assert not is_portal_health_code(code)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("221442725091", "221442725091"),
        (" 2214 4272 5091 ", "221442725091"),
        ("221442725090", "221442725090"),  # bad check digit: an earlier system's code
        ("qn-12 34", "QN-1234"),
        ("ABCD", "ABCD"),
        ("A" * 20, "A" * 20),
    ],
)
def test_health_code_is_uppercased_without_spaces_and_older_codes_are_kept(value, expected):
    assert normalize_health_code(value) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_health_code_blank_is_none(value):
    assert normalize_health_code(value) is None


@pytest.mark.parametrize("value", ["ABC", "A" * 21, "AB_123", "AB.123", "ĐB1234", "AB/1234"])
def test_health_code_invalid_raises(value):
    with pytest.raises(FieldError, match="4 to 20") as caught:
        normalize_health_code(value)
    assert caught.value.field == "health_code"


# Gender


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("M", "M"),
        ("m", "M"),
        ("Nam", "M"),
        (" NAM ", "M"),
        ("male", "M"),
        ("Male", "M"),
        ("F", "F"),
        ("f", "F"),
        ("Nữ", "F"),
        ("nữ", "F"),
        ("NỮ", "F"),
        (unicodedata.normalize("NFD", "Nữ"), "F"),
        ("Nu", "F"),
        ("female", "F"),
        ("FEMALE", "F"),
    ],
)
def test_gender_accepts_codes_vietnamese_and_english_words(value, expected):
    assert normalize_gender(value) == expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_gender_blank_is_none(value):
    assert normalize_gender(value) is None


@pytest.mark.parametrize("value", ["X", "Khác", "nam nữ", "-", "man"])
def test_gender_unknown_raises(value):
    with pytest.raises(FieldError, match="gender") as caught:
        normalize_gender(value, field="sex")
    assert caught.value.field == "sex"
