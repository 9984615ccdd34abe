"""A commune station's day in a real Chromium: first sign-in, search, edit, history, and a foreign record."""

import logging
import os
import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from waitress import wasyncore
from waitress.server import create_server

from models.citizens import Citizen
from models.units import UnitKind
from tests.factories import PASSWORD
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.test_i18n import compiled_catalogs  # noqa: F401  (the pages must be Vietnamese)

pytestmark = pytest.mark.browser

# Debian's package; Playwright's own browser downloads are never used.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
NEW_PASSWORD = "Hạ Long bay 2025"


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module; each test gets its own context (cookies)."""
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; REQUIRE_BROWSER=1 makes this a failure)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app, caplog):
    """The test app served by waitress on a free port, in a background thread."""
    # Chromium fetches a page's assets in parallel; waitress's "task queue depth" notes are noise here.
    caplog.set_level(logging.ERROR, logger="waitress.queue")
    sockets = {}
    server = create_server(app, host="127.0.0.1", port=0, map=sockets, threads=8)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    # Closing the sockets from inside the server's own loop lets run() return cleanly.
    server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
    thread.join(timeout=10)
    assert not thread.is_alive(), "waitress did not stop"


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="vi-VN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def ward_station(app):
    """A commune station with a new colleague (one-time password) and a resident; a second station next door."""
    own_ward, other_ward = wards_of(n=2)
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[own_ward], code="TYT-A", name="Trạm Y tế phường Hà Tu")
    make_unit(UnitKind.COMMUNE_STATION, wards=[other_ward], code="TYT-B", name="Trạm Y tế phường bên cạnh")
    make_staff(station, username="lan", full_name="Phạm Thị Lan", must_change=True)
    resident = make_citizen(own_ward, full_name="Nguyễn Văn Đức")
    outsider = make_citizen(other_ward, full_name="Trần Thị Bích Ngọc")
    return resident, outsider


def test_a_new_station_colleague_updates_a_residents_phone(page, ward_station, tmp_path):
    resident, outsider = ward_station

    # First sign-in with the one-time password: the password change comes first.
    page.goto("/admin/login/")
    expect(page.get_by_role("heading", name="Đăng nhập cán bộ")).to_be_visible()
    page.get_by_label("Tên đăng nhập").fill("lan")
    page.get_by_label("Mật khẩu", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/admin/password/"))
    expect(page.get_by_role("heading", name="Đổi mật khẩu")).to_be_visible()
    page.get_by_label("Mật khẩu hiện tại").fill(PASSWORD)
    page.get_by_label("Mật khẩu mới", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Nhập lại mật khẩu mới").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Lưu mật khẩu mới").click()

    # The back office, in Vietnamese.
    page.wait_for_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Cổng dữ liệu y tế")).to_be_visible()
    expect(page.get_by_text("Đang đăng nhập: Phạm Thị Lan, Trạm Y tế phường Hà Tu.")).to_be_visible()

    # Citizens, through the menu; the search ignores diacritics.
    page.locator(".navbar .dropdown-toggle", has_text="Công dân").click()
    page.locator(".navbar .dropdown-item", has_text="Công dân").click()
    page.wait_for_url(re.compile(r"/admin/citizen/"))
    search = page.locator("input[name=search]").first
    search.fill("nguyen van duc")
    search.press("Enter")
    page.wait_for_url(re.compile(r"search=nguyen"))
    row = page.locator("table tbody tr", has_text="Nguyễn Văn Đức")
    expect(row).to_have_count(1)
    expect(page.locator("table tbody")).not_to_contain_text("Trần Thị Bích Ngọc")

    # The citizen's page, then the edit form.
    row.locator("a[href*='/admin/citizen/details/']").click()
    page.wait_for_url(re.compile(r"/admin/citizen/details/"))
    details_url = page.url
    page.get_by_role("link", name="Chỉnh sửa", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/citizen/edit/"))
    page.locator("#phone").fill("+84 912 345 678")
    page.get_by_role("button", name="Lưu", exact=True).click()
    back_on_the_list = re.compile(r"^[^?]*/admin/citizen/(\?.*)?$")
    expect(page, "the save was refused: the form is shown again").to_have_url(back_on_the_list)

    # Stored in its 10-digit form, and the change is in the page's history.
    assert Citizen.get_by_id(resident.id).phone == "0912345678"
    page.goto(details_url)
    expect(page).to_have_title(re.compile(r"^Công dân\b.*Cổng dữ liệu y tế$"))
    phone_row = page.locator("table.searchable tr", has_text="Số điện thoại")
    expect(phone_row).to_contain_text("0912345678")
    expect(page.get_by_role("heading", name="Lịch sử thay đổi")).to_be_visible()
    history = page.locator("#history + table")
    expect(history).to_contain_text("lan")
    expect(history).to_contain_text("Số điện thoại")
    expect(history).to_contain_text("0912345678")
    screenshot = tmp_path / "citizen-details.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000

    # A citizen of another commune, by typing the URL: nothing of theirs is shown.
    for view in ("details", "edit"):
        response = page.goto(f"/admin/citizen/{view}/?id={outsider.id}")
        assert response.status in (200, 403, 404)  # 200: redirected to the list, "record does not exist"
        expect(page.locator("body")).not_to_contain_text("Trần Thị Bích Ngọc")
        expect(page.locator("body")).not_to_contain_text(outsider.health_code)
