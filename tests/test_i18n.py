"""Vietnamese by default, English on request, a complete Vietnamese catalog, dates as dd/mm/yyyy."""

import datetime
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from models.accounts import Role
from models.units import UnitKind
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import sign_in

PROJECT = Path(__file__).resolve().parent.parent
TRANSLATIONS = PROJECT / "translations"
LANGUAGES = ("vi", "en")
CATALOGS = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/*.po"))
# The keywords of the extract command in README.md; "_" and ngettext are pybabel's defaults.
EXTRACT_KEYWORDS = ("_l", "lazy_gettext", "gettext", "ngettext")


def read_catalog(path, locale=None):
    with open(path, "rb") as handle:
        return read_po(handle, locale=locale)


def compile_catalogs():
    """Compile every .po whose .mo is missing or older, as `make translations` does."""
    # `make test` has compiled them already; a bare `pytest` after editing a .po must not test the old .mo.
    for po in CATALOGS:
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        catalog = read_catalog(po, po.parent.parent.name)
        # Written beside the target and renamed, so a parallel test run never reads half a file.
        with tempfile.NamedTemporaryFile(dir=mo.parent, suffix=".mo.tmp", delete=False) as handle:
            write_mo(handle, catalog)
        os.replace(handle.name, mo)


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogs():
    compile_catalogs()


def extract_messages(destination):
    """Run pybabel extract with babel.cfg over the project, as README.md says; return the POT catalog."""
    pot = destination / "messages.pot"
    keywords = [arg for keyword in EXTRACT_KEYWORDS for arg in ("-k", keyword)]
    pybabel = [sys.executable, "-m", "babel.messages.frontend", "-q"]
    subprocess.run(
        [*pybabel, "extract", "-F", "babel.cfg", *keywords, "-o", str(pot), "."],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return read_catalog(pot)


@pytest.fixture
def station(app):
    """A commune station with one ward, a colleague who signs in, and one resident."""
    ward = wards_of(n=1)[0]
    unit = make_unit(UnitKind.COMMUNE_STATION, wards=[ward], name="Trạm Y tế phường Hà Tu")
    make_staff(unit, username="lan", full_name="Phạm Thị Lan")
    return unit


def page_of(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return response.text


def test_the_sign_in_page_is_vietnamese_by_default(client):
    page = page_of(client, "/admin/login/")
    assert '<html lang="vi">' in page
    assert "Đăng nhập cán bộ" in page
    assert "Tên đăng nhập" in page
    assert "Staff sign-in" not in page


def test_a_visitor_switches_to_english_and_back(client):
    response = client.get("/lang/en?next=/admin/login/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login/"
    page = page_of(client, "/admin/login/")
    assert '<html lang="en">' in page
    assert "Staff sign-in" in page
    assert "Đăng nhập" not in page

    client.get("/lang/vi")
    assert "Đăng nhập cán bộ" in page_of(client, "/admin/login/")


def test_an_unknown_language_leaves_the_page_in_vietnamese(client):
    client.get("/lang/fr")
    assert "Đăng nhập cán bộ" in page_of(client, "/admin/login/")


def test_the_chosen_language_survives_sign_in(client, station):
    client.get("/lang/en")
    assert sign_in(client, "lan").status_code == 302
    assert "Signed in as Phạm Thị Lan" in page_of(client, "/admin/")


def test_the_citizen_list_speaks_vietnamese(client, station):
    make_citizen(wards_of(n=1)[0], full_name="Nguyễn Văn Đức")
    sign_in(client, "lan")
    page = page_of(client, "/admin/citizen/")
    # Flask-Admin's own words, from its bundled "admin" domain.
    for words in ("Danh sách", "Tạo", "Thêm bộ lọc", "Áp dụng"):
        assert words in page, words
    # The portal's words, from translations/vi.
    for words in ("Họ và tên", "Ngày sinh", "Mã Y tế cá nhân", "Xã/phường", "Số thẻ BHYT", "Số CCCD/CMND", "Đăng xuất"):
        assert words in page, words
    for english in ("Add Filter", "Full name", "Personal health code", "Sign out"):
        assert english not in page, english


def test_the_citizen_list_speaks_english_on_request(client, station):
    sign_in(client, "lan")
    client.get("/lang/en")
    page = page_of(client, "/admin/citizen/")
    for words in ("List", "Create", "Add Filter", "Full name", "Personal health code", "Health insurance number"):
        assert words in page, words
    assert "Mã Y tế cá nhân" not in page


def test_every_message_has_a_vietnamese_translation(tmp_path):
    template = extract_messages(tmp_path)
    vietnamese = read_catalog(TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.po", "vi")
    missing = []
    for message in template:
        if not message.id:
            continue
        translated = vietnamese.get(message.id, message.context)
        if translated is None or not translated.string or translated.fuzzy:
            missing.append(message.id)
    assert len(template) > 100  # the extraction found the code's messages
    assert not missing, (
        "untranslated or fuzzy in translations/vi/LC_MESSAGES/messages.po (see README.md, Translations): "
        + "; ".join(missing)
    )


@pytest.mark.parametrize("path", CATALOGS, ids=lambda path: str(path.relative_to(TRANSLATIONS)))
def test_each_catalog_is_well_formed(path):
    language = path.parent.parent.name
    catalog = read_catalog(path, language)
    assert str(catalog.locale) == language
    # Babel's checks: the same %(name)s placeholders in msgstr as in msgid, and so on.
    problems = [(message.id, [str(error) for error in errors]) for message, errors in catalog.check()]
    assert not problems


def test_both_languages_have_a_catalog():
    for language in LANGUAGES:
        assert (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").is_file(), language


def test_a_form_that_fails_validation_says_so_in_vietnamese(client, station):
    # Flask-Admin 2.2.1 ships this message untranslated in its vi admin.mo; translations/vi/.../admin.po has it.
    citizen = make_citizen(wards_of(n=1)[0], full_name="Nguyễn Văn Đức")
    sign_in(client, "lan")
    url = f"/admin/citizen/edit/?id={citizen.id}"
    response = client.post(url, data={"full_name": "", "csrf_token": admin_token(client, url)})
    assert response.status_code == 200
    assert "Không thể lưu bản ghi." in response.text
    assert "Failed to save record." not in response.text


def test_dates_are_day_month_year_on_the_citizen_page(client, station):
    citizen = make_citizen(wards_of(n=1)[0], full_name="Nguyễn Văn Đức", date_of_birth=datetime.date(1990, 3, 5))
    sign_in(client, "lan")
    assert "05/03/1990" in page_of(client, "/admin/citizen/")
    page = page_of(client, f"/admin/citizen/details/?id={citizen.id}")
    assert "05/03/1990" in page
    assert "1990-03-05" not in page


@pytest.mark.parametrize("view", ["citizen", "household", "vaccination", "encounter", "health_unit", "staff"])
def test_form_labels_are_vietnamese(client, station, view):
    make_staff(station, Role.SYSTEM_ADMIN, username="quantri")
    sign_in(client, "quantri")
    labels = re.findall(r"<label[^>]*>\s*([^<]+?)\s*(?:&nbsp;|<)", page_of(client, f"/admin/{view}/new/"))
    assert labels, f"no labels on the {view} form"
    english = [label for label in labels if label in ENGLISH_FIELD_LABELS]
    assert not english, f"English labels on the {view} form: {english}"


# What Flask-Admin makes of field names when no label is given.
ENGLISH_FIELD_LABELS = {
    "Full Name", "Date Of Birth", "Gender", "Phone", "Ward", "Household", "Relation To Head", "Book Number",
    "Address", "Citizen", "Vaccine", "Dose Number", "Date", "Site", "Lot", "Facility", "Diagnosis", "Summary",
    "Icd10 Code", "Name", "Code", "Kind", "Parent", "Username", "Role", "Unit", "Is Active",
}  # fmt: skip
