"""A citizen on a small phone, without JavaScript, looks up their record in a real Chromium."""

import datetime
import json
import re

import pytest
from playwright.sync_api import expect

from models.records import Vaccination
from models.records import Vaccine
from tests.factories import make_citizen
from tests.factories import wards_of
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.test_browser import live_server  # noqa: F401  (fixture)
from tests.test_i18n import compiled_catalogs  # noqa: F401  (the pages must be Vietnamese)

pytestmark = pytest.mark.browser
PHONE = "0912345678"


@pytest.fixture
def phone_page(browser, live_server):  # noqa: F811
    # A cheap phone's screen, and no JavaScript at all: the flow must work with plain forms.
    context = browser.new_context(
        base_url=live_server, locale="vi-VN", viewport={"width": 360, "height": 640}, java_script_enabled=False
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def resident(app):
    person = make_citizen(
        wards_of(n=1)[0], full_name="Nguyễn Thị Mai", phone=PHONE, date_of_birth=datetime.date(1990, 5, 6)
    )
    measles = Vaccine.create(code="MR", name="Vắc xin Sởi - Rubella", disease="Sởi, Rubella", doses_in_schedule=2)
    Vaccine.create(code="BCG", name="Vắc xin phòng lao (BCG)", disease="Lao")
    Vaccination.create(citizen=person, vaccine=measles, dose_number=1, date=datetime.date(1991, 5, 6))
    return person


def last_code(app):
    app.extensions["sms"].flush()
    with open(app.config["SMS_OUTBOX"], encoding="utf-8") as outbox:
        text = json.loads(outbox.readlines()[-1])["text"]
    return re.search(r"\b(\d{6})\b", text).group(1)


def test_a_citizen_looks_up_the_record_on_a_phone_without_javascript(app, phone_page, resident):
    page = phone_page
    page.goto("/lookup")
    expect(page.get_by_role("heading", name="Tra cứu hồ sơ sức khỏe")).to_be_visible()
    page.get_by_label("Mã Y tế cá nhân").fill(resident.health_code)
    page.get_by_label("Số điện thoại").fill("+84 912 345 678")
    send = page.get_by_role("button", name="Lấy mã xác thực")
    box = send.bounding_box()
    assert box["height"] >= 44 and box["width"] <= 360, f"a small target on a phone: {box}"
    send.click()

    expect(page.get_by_role("heading", name="Nhập mã xác thực")).to_be_visible()
    page.get_by_label("Mã xác thực").fill("000000" if last_code(app) != "000000" else "111111")
    page.get_by_role("button", name="Tiếp tục").click()
    expect(page.get_by_text(re.compile("Mã không đúng. Còn 2 lần thử."))).to_be_visible()
    page.get_by_label("Mã xác thực").fill(last_code(app))
    page.get_by_role("button", name="Tiếp tục").click()

    page.wait_for_url(re.compile(r"/record$"))
    expect(page.get_by_role("heading", name="Hồ sơ sức khỏe của bạn")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Nguyễn Thị Mai")
    expect(page.locator("body")).to_contain_text("06/05/1990")
    expect(page.locator("li", has_text="Vắc xin Sởi - Rubella")).to_contain_text("Đã tiêm 1 mũi")
    expect(page.locator("li", has_text="Vắc xin phòng lao (BCG)")).to_contain_text("Chưa tiêm")
    expect(page.locator("body")).not_to_contain_text(PHONE)  # masked on the page
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways on a phone"

    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_url(re.compile(r"/lookup$"))
    page.goto("/record")
    page.wait_for_url(re.compile(r"/lookup$"))
