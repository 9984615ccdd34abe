# ruff: noqa: F811  (pytest fixtures imported from other test modules are used as arguments)
"""A station reviews a likely duplicate person in a real Chromium: compares, picks values, merges."""

import re

import pytest
from playwright.sync_api import expect

from models.audit import AuditEvent
from models.citizens import Citizen
from models.duplicates import DuplicateCandidate
from models.records import Encounter
from services import duplicates
from tests.factories import PASSWORD
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.test_browser import live_server  # noqa: F401  (fixture)
from tests.test_browser import page  # noqa: F401  (fixture)
from tests.test_browser_risk import sign_in
from tests.test_duplicates import full_pair  # noqa: F401  (fixture)
from tests.test_duplicates import world  # noqa: F401  (fixture)
from tests.test_i18n import compiled_catalogs  # noqa: F401  (the pages must be Vietnamese)

pytestmark = pytest.mark.browser


def test_a_station_merges_a_pair_picking_the_name_of_one_and_the_record_of_the_other(page, full_pair):
    first, second = full_pair["first"], full_pair["second"]
    candidate = DuplicateCandidate.get()
    sign_in(page, "colleague", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/"))

    # The queue, through the menu.
    page.locator(".navbar .dropdown-toggle", has_text="Công dân").click()
    page.locator(".navbar .dropdown-item", has_text="Hồ sơ có thể trùng").click()
    page.wait_for_url(re.compile(r"/admin/duplicate/"))
    expect(page.locator("table tbody tr")).to_have_count(1)
    page.locator(f"a[href*='/admin/duplicate/details/?id={candidate.id}']").first.click()

    # Side by side: the two spellings of the name, each with its own choice.
    expect(page.get_by_role("columnheader", name="Hồ sơ thứ nhất")).to_be_visible()
    name_row = page.locator("tr", has=page.locator("input[name='field_full_name']"))
    expect(name_row).to_contain_text("Nguyễn Thị Mai")
    expect(name_row).to_contain_text("nguyen thi mai")
    page.locator("input[name='survivor'][value='b']").check()
    page.locator("input[name='field_full_name'][value='a']").check()
    page.locator("form", has=page.get_by_role("button", name="Gộp", exact=True)).get_by_label("Ghi chú").fill(
        "Cùng một người, hai lần đăng ký"
    )

    # A destructive action asks first: dismissing the dialog changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Gộp", exact=True).click()
    assert Citizen.select().where(Citizen.id.in_([first.id, second.id])).count() == 2

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Gộp", exact=True).click()
    page.wait_for_url(re.compile(rf"/admin/citizen/details/\?id={second.id}\b"))
    expect(page.get_by_text("Hai hồ sơ đã được gộp thành một.")).to_be_visible()

    survivor = Citizen.get_by_id(second.id)
    assert survivor.full_name == "Nguyễn Thị Mai"  # picked from the first record
    assert not Citizen.select().where(Citizen.id == first.id).exists()
    assert Encounter.select().where(Encounter.citizen == second.id).count() == 2
    assert Citizen.find_by_health_code(first.health_code).id == second.id
    event = AuditEvent.get(AuditEvent.object_type == "citizen_merge", AuditEvent.object_id == str(second.id))
    assert event.actor == "colleague"
    assert DuplicateCandidate.get_by_id(candidate.id).status == "merged"


def test_not_a_duplicate_is_remembered_from_the_screen(page, full_pair):
    candidate = DuplicateCandidate.get()
    sign_in(page, "colleague", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/"))
    page.goto(f"/admin/duplicate/details/?id={candidate.id}")

    form = page.locator("form", has=page.get_by_role("button", name="Không trùng"))
    form.get_by_label("Ghi chú").fill("Hai chị em sinh đôi")
    form.get_by_role("button", name="Không trùng").click()

    expect(page.get_by_text("Đã ghi nhận: đây là hai người khác nhau.")).to_be_visible()
    assert DuplicateCandidate.get_by_id(candidate.id).status == "not_duplicate"
    assert duplicates.find_duplicates_of([full_pair["second"].id]) == 0
