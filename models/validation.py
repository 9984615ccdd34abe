"""Validation and normalization of the personal data citizens and staff enter."""

import datetime
import re

from flask_babel import lazy_gettext

from models.text import fold

_PHONE_PUNCTUATION = re.compile(r"[\s.\-()]")
_WHITESPACE = re.compile(r"\s")
_TEN_DIGITS = re.compile(r"0[0-9]{9}")

# First three digits of the 10-digit form of a Vietnamese mobile number.
MOBILE_PREFIXES = frozenset(
    [f"03{digit}" for digit in range(2, 10)]
    + ["052", "055", "056", "058", "059"]
    + ["070", "076", "077", "078", "079"]
    + [f"08{digit}" for digit in range(1, 10)]
    + [f"09{digit}" for digit in range(10)]
)

# The 63 (pre-2025) province codes that open a CCCD number.
# fmt: off
CCCD_PROVINCE_CODES = frozenset((
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "022",
    "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038", "040", "042",
    "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060", "062", "064", "066",
    "067", "068", "070", "072", "074", "075", "077", "079", "080", "082", "083", "084", "086", "087",
    "089", "091", "092", "093", "094", "095", "096",
))
# fmt: on

# The fourth CCCD digit: (first year of the century, gender).
CCCD_CENTURY_GENDER = {
    "0": (1900, "M"),
    "1": (1900, "F"),
    "2": (2000, "M"),
    "3": (2000, "F"),
    "4": (2100, "M"),
    "5": (2100, "F"),
    "6": (2200, "M"),
    "7": (2200, "F"),
    "8": (1800, "M"),
    "9": (1800, "F"),
}

_CCCD = re.compile(r"[0-9]{12}")
_CMND = re.compile(r"[0-9]{9}")
_INSURANCE_NUMBER = re.compile(r"[A-Z]{2}[1-5](0[1-9]|[1-9][0-9])[0-9]{10}")
_DAY_MONTH_YEAR = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_HEALTH_CODE = re.compile(r"[A-Z0-9-]{4,20}")
_PORTAL_HEALTH_CODE = re.compile(r"[0-9]{12}")

EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)

_GENDERS = {"m": "M", "nam": "M", "male": "M", "f": "F", "nu": "F", "female": "F"}


class FieldError(ValueError):
    """A value entered for a model field is not valid; message is a lazy string."""

    def __init__(self, field, message):
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self):
        return str(self.message)


def _text(value):
    """The value as a stripped string; None becomes ""."""
    if type(value) is str:  # as forms and files give it
        return value.strip()
    return "" if value is None else str(value).strip()


def normalize_phone(value, field="phone"):
    """Return a Vietnamese mobile number in its 10-digit 0... form, or None when blank."""
    number = _PHONE_PUNCTUATION.sub("", _text(value))
    if not number:
        return None
    if number.startswith("+84"):
        number = "0" + number[3:]
    elif number.startswith("84") and len(number) == 11:
        number = "0" + number[2:]
    if not _TEN_DIGITS.fullmatch(number) or number[:3] not in MOBILE_PREFIXES:
        raise FieldError(
            field,
            lazy_gettext("Enter a Vietnamese mobile number of 10 digits, such as 0912 345 678 or +84 912 345 678."),
        )
    return number


def validate_cccd(value, date_of_birth=None, gender=None, field="national_id"):
    """Check a 12-digit CCCD number, and its birth year and gender digits when those are known."""
    number = _text(value)
    if not _CCCD.fullmatch(number):
        raise FieldError(field, lazy_gettext("A CCCD number has exactly 12 digits."))
    if number[:3] not in CCCD_PROVINCE_CODES:
        raise FieldError(
            field,
            lazy_gettext(
                "The CCCD number starts with %(code)s, which is not a province code; check the first 3 digits.",
                code=number[:3],
            ),
        )
    century, id_gender = CCCD_CENTURY_GENDER[number[3]]
    if date_of_birth is not None and century + int(number[4:6]) != date_of_birth.year:
        raise FieldError(
            field,
            lazy_gettext(
                "The CCCD number is for someone born in %(year)s, which does not match the date of birth.",
                year=century + int(number[4:6]),
            ),
        )
    if gender in ("M", "F") and gender != id_gender:
        raise FieldError(
            field, lazy_gettext("The gender digit of the CCCD number (the 4th digit) does not match the gender.")
        )
    return number


def validate_cmnd(value, field="national_id"):
    """Check an old 9-digit CMND number."""
    number = _text(value)
    if not _CMND.fullmatch(number):
        raise FieldError(field, lazy_gettext("A CMND number has exactly 9 digits."))
    return number


def normalize_national_id(value, date_of_birth=None, gender=None, field="national_id"):
    """Return a CCCD or CMND number without spaces, or None when blank."""
    number = _WHITESPACE.sub("", _text(value))
    if not number:
        return None
    if _CCCD.fullmatch(number):
        return validate_cccd(number, date_of_birth=date_of_birth, gender=gender, field=field)
    if _CMND.fullmatch(number):
        return validate_cmnd(number, field=field)
    raise FieldError(field, lazy_gettext("Enter the ID number as 9 digits (CMND) or 12 digits (CCCD)."))


def normalize_insurance_number(value, field="insurance_number"):
    """Return a 15-character BHYT card number in upper case, or None when blank."""
    number = _WHITESPACE.sub("", _text(value)).upper()
    if not number:
        return None
    if not _INSURANCE_NUMBER.fullmatch(number):
        raise FieldError(
            field,
            lazy_gettext(
                "Enter the health insurance card number as 15 characters: 2 letters, "
                "the benefit level (1-5), a 2-digit province code and 10 digits, such as DN4010123456789."
            ),
        )
    return number


def parse_date(value, field="date_of_birth"):
    """Return a date from a date, a datetime or a dd/mm/yyyy (or yyyy-mm-dd) string; None when blank."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = _text(value)
    if not text:
        return None
    day_first = _DAY_MONTH_YEAR.fullmatch(text)
    iso = None if day_first else _ISO_DATE.fullmatch(text)
    try:
        if day_first:
            return datetime.date(int(day_first[3]), int(day_first[2]), int(day_first[1]))
        if iso:
            return datetime.date(int(iso[1]), int(iso[2]), int(iso[3]))
    except ValueError:
        pass
    raise FieldError(field, lazy_gettext("Enter the date as dd/mm/yyyy, such as 25/12/1990."))


def validate_birth_date(value, field="date_of_birth", today=None):
    """Parse a date of birth and refuse it when in the future or before 1900."""
    born = parse_date(value, field=field)
    if born is None:
        return None
    today = today or datetime.date.today()
    if born > today:
        raise FieldError(field, lazy_gettext("The date of birth cannot be in the future."))
    if born < EARLIEST_BIRTH_DATE:
        raise FieldError(field, lazy_gettext("The date of birth cannot be before 01/01/1900."))
    return born


def normalize_email(value, field="email"):
    """Return an email address in lower case, or None when blank."""
    email = _text(value).lower()
    if not email:
        return None
    local, _, domain = email.partition("@")
    if (
        email.count("@") != 1
        or not local
        or "." not in domain
        or domain.startswith(".")
        or domain.endswith(".")
        or ".." in domain
        or _WHITESPACE.search(email)
    ):
        raise FieldError(field, lazy_gettext("Enter an email address such as name@example.com."))
    return email


def luhn_check_digit(digits):
    """Return the Luhn check digit to append to a string of digits."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"expected a string of digits, got {digits!r}")
    # From the right: the rightmost digit is doubled (the check digit will follow it), then every other one.
    backwards = digits[::-1]
    total = sum(map(_LUHN_DOUBLED.__getitem__, backwards[0::2])) + sum(map(int, backwards[1::2]))
    return str((10 - total % 10) % 10)


# A digit doubled, less 9 when that has two digits.
_LUHN_DOUBLED = {str(digit): (2 * digit if digit < 5 else 2 * digit - 9) for digit in range(10)}


def new_health_code(province_code, rng):
    """Return a new 12-digit portal health code: province code, 9 random digits, Luhn digit."""
    if not 1 <= province_code <= 96:
        raise ValueError(f"expected a province code 1-96, got {province_code!r}")
    body = f"{province_code:02d}{rng.randrange(10**9):09d}"
    return body + luhn_check_digit(body)


def is_portal_health_code(code):
    """True when the code has 12 digits and a valid Luhn check digit."""
    if not isinstance(code, str) or not _PORTAL_HEALTH_CODE.fullmatch(code):
        return False
    return luhn_check_digit(code[:11]) == code[11]


def normalize_health_code(value, field="health_code"):
    """Return a health code in upper case without spaces, or None when blank; older codes are kept."""
    code = _WHITESPACE.sub("", _text(value)).upper()
    if not code:
        return None
    if not _HEALTH_CODE.fullmatch(code):
        raise FieldError(field, lazy_gettext("A health code has 4 to 20 letters, digits or dashes."))
    return code


def normalize_gender(value, field="gender"):
    """Return "M" or "F" from M/F, Nam/Nữ or male/female, or None when blank."""
    if not _text(value):
        return None
    if value in _GENDERS.values():  # as stored, and as most forms and files give it
        return value
    folded = fold(value)
    if folded not in _GENDERS:
        raise FieldError(field, lazy_gettext("Enter the gender as M (Nam) or F (Nữ)."))
    return _GENDERS[folded]
