# ruff: noqa: F811  (pytest fixtures imported from other test modules are used as arguments)
"""A citizen declares a high risk on a phone, and CDC staff triage the case, in a real Chromium."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from models.accounts import Role
from models.lookup import LookupChallenge
from models.risk import CaseEvent
from models.risk import CaseStatus
from models.risk import Declaration
from models.risk import DeclarationDraft
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import declare
from services import clock
from services.mail import SmtpBackend
from tests.factories import PASSWORD
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.smtp_server import smtp_inbox  # noqa: F401  (fixture)
from tests.test_browser import NEW_PASSWORD
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.test_browser import live_server  # noqa: F401  (fixture)
from tests.test_browser import page  # noqa: F401  (fixture)
from tests.test_browser_lookup import last_code
from tests.test_browser_lookup import phone_page  # noqa: F401  (fixture)
from tests.test_i18n import compiled_catalogs  # noqa: F401  (the pages must be Vietnamese)
from tests.test_risk_model import NO_SYMPTOMS
from tests.test_risk_model import checklist  # noqa: F401  (fixture)
from tests.test_risk_model import person_of
from tests.test_risk_model import province  # noqa: F401  (fixture)
from tests.test_risk_model import version  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
HIGH = {**NO_SYMPTOMS, "close_contact": "confirmed", "fever": "yes"}
FEVER = "Trong 14 ngày qua, bạn có bị sốt"
CASE_NUMBER = re.compile(r"\bCA-[0-9A-Z]{8}\b")


def nothing_declared():
    """No declaration, case, kept form or code challenge in the database."""
    return (
        Declaration.select().count() == 0
        and RiskCase.select().count() == 0
        and DeclarationDraft.select().count() == 0
        and LookupChallenge.select().count() == 0
    )


def answer(page, question, choice):
    """Tick one option of a question, found by its legend."""
    page.get_by_role("group", name=question).get_by_label(choice, exact=True).check()


def test_a_citizen_declares_a_high_risk_on_a_phone_and_the_station_is_mailed(app, phone_page, province, version,
                                                                              smtp_inbox, tmp_path):  # fmt: skip
    url, inbox = smtp_inbox
    app.extensions["mail"].backend = SmtpBackend(url)
    citizen = province["citizen_a"]
    page = phone_page

    page.goto("/declare")
    expect(page.get_by_role("heading", name="Khai báo nguy cơ")).to_be_visible()
    expect(page.get_by_role("group", name="Khai báo cho ai").get_by_label("Cho bản thân")).to_be_checked()
    page.get_by_label("Mã Y tế cá nhân", exact=True).fill(citizen.health_code)
    page.get_by_label("Số điện thoại nhận mã", exact=True).fill("+84 912 000 001")
    # Every required question but the fever one: the form must name it and keep the rest.
    answer(page, "Bạn có ho không?", "Có")
    answer(page, "Bạn có khó thở không?", "Không")
    answer(page, "Bạn có mất vị giác hoặc khứu giác không?", "Không")
    answer(page, "tiếp xúc gần với ca bệnh", "Có, với ca bệnh đã xác định")
    answer(page, "đi về từ vùng đang có dịch", "Không")
    page.get_by_label("Nhiệt độ đo được gần nhất (°C), nếu có").fill("38,5")
    page.get_by_role("button", name="Lấy mã xác thực").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Vui lòng sửa các mục sau:")
    expect(summary.get_by_role("link", name=re.compile(FEVER))).to_be_visible()
    expect(summary).to_contain_text("Vui lòng trả lời câu hỏi này.")
    expect(page.locator("#q_fever-error")).to_have_text("Vui lòng trả lời câu hỏi này.")
    assert nothing_declared(), "a refused form stored something"
    expect(
        page.get_by_role("group", name="tiếp xúc gần với ca bệnh").get_by_label("Có, với ca bệnh đã xác định")
    ).to_be_checked()
    expect(page.get_by_label("Mã Y tế cá nhân", exact=True)).to_have_value(citizen.health_code)

    answer(page, FEVER, "Có")
    send = page.get_by_role("button", name="Lấy mã xác thực")
    box = send.bounding_box()
    assert box["height"] >= 44 and box["width"] <= 360, f"a small target on a phone: {box}"
    send.click()

    # The code goes to the phone on file; a wrong code declares nothing.
    expect(page.get_by_role("heading", name="Xác nhận tờ khai")).to_be_visible()
    code = last_code(app)
    page.get_by_label("Mã xác thực").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Gửi tờ khai").click()
    expect(page.get_by_text("Mã không đúng. Còn 2 lần thử.")).to_be_visible()
    assert Declaration.select().count() == 0
    page.get_by_label("Mã xác thực").fill(code)
    page.get_by_role("button", name="Gửi tờ khai").click()

    page.wait_for_url(re.compile(r"/declare/done$"))
    expect(page.get_by_role("heading", name="Đã nhận tờ khai")).to_be_visible()
    declaration = Declaration.get()
    expect(page.locator("#declaration-number")).to_have_text(declaration.number)
    qr = page.get_by_role("img", name="Mã QR của số tờ khai")
    expect(qr.locator("svg")).to_be_visible()
    assert qr.bounding_box()["width"] <= 360
    expect(page.locator("body")).to_contain_text("Mức nguy cơ: Cao")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways on a phone"
    screenshot = tmp_path / "declaration-done.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000

    case = RiskCase.get()
    assert (declaration.citizen_id, declaration.risk_level) == (citizen.id, RiskLevel.HIGH)
    assert (case.unit_id, case.status) == (province["a"].id, CaseStatus.NEW)

    # The commune's station is told at once: the case, its level and a link, nothing about the person.
    app.extensions["mail"].flush()
    assert inbox.received.wait(5), "no mail reached the SMTP server"
    ((recipients, message),) = inbox.messages
    assert recipients == ["tyt-a@example.vn"]
    subject, body = message["Subject"], message.get_content()
    assert case.number in subject and case.number in body and "Cao" in body
    assert f"/admin/risk_case/details/?id={case.id}" in body
    for personal in (citizen.full_name, "Bình", citizen.phone, "912 000 001", citizen.health_code, "sốt"):
        assert personal not in subject and personal not in body, f"{personal!r} is in the unit's mail"


def open_case(version, citizen, answers, now):
    _declaration, case, _opened = declare(version, person_of(citizen), dict(answers), now)
    return case


@pytest.fixture
def queue(app, province, version):
    """Three cases in the CDC's province, the newest a high risk; a CDC colleague and another commune's station."""
    now = clock.now()
    elsewhere = make_citizen(province["wards"][2], full_name="Phạm Văn Cũ", phone="0912000003")
    older_high = open_case(version, elsewhere, HIGH, now - datetime.timedelta(hours=3))
    newer_low = open_case(version, province["citizen_b"], NO_SYMPTOMS, now - datetime.timedelta(hours=1))
    new_high = open_case(version, province["citizen_a"], HIGH, now)
    make_staff(province["cdc"], role=Role.CDC_STAFF, username="hoa", full_name="Đỗ Thị Hoa", must_change=True)
    make_staff(province["b"], username="tuan", full_name="Lý Văn Tuấn")
    return new_high, older_high, newer_low


def sign_in(page, username, password):
    page.goto("/admin/login/")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu", exact=True).fill(password)
    page.get_by_role("button", name="Đăng nhập").click()


def move(page, status, note):
    form = page.locator("form", has=page.get_by_role("button", name="Đổi trạng thái"))
    form.get_by_label("Trạng thái mới").select_option(label=status)
    form.get_by_label("Ghi chú").fill(note)
    form.get_by_role("button", name="Đổi trạng thái").click()
    expect(page.get_by_text(f"Ca hiện ở trạng thái: {status}.")).to_be_visible()


def test_cdc_staff_triage_the_new_high_risk_case_and_another_commune_cannot_open_it(page, queue):
    new_high, older_high, newer_low = queue

    # First sign-in with the one-time password: the password change comes first.
    sign_in(page, "hoa", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/password/"))
    page.get_by_label("Mật khẩu hiện tại").fill(PASSWORD)
    page.get_by_label("Mật khẩu mới", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Nhập lại mật khẩu mới").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Lưu mật khẩu mới").click()
    page.wait_for_url(re.compile(r"/admin/$"))

    # The queue, through the menu: high risk first, newest first within a level.
    page.locator(".navbar .dropdown-toggle", has_text="Khai báo nguy cơ").click()
    page.locator(".navbar .dropdown-item", has_text="Hàng đợi phân loại ca").click()
    page.wait_for_url(re.compile(r"/admin/risk_case/"))
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(3)
    assert CASE_NUMBER.findall(page.locator("table tbody").inner_text()) == [
        new_high.number,
        older_high.number,
        newer_low.number,
    ]
    top = rows.first
    expect(top).to_contain_text("Cao")
    expect(top).to_contain_text("Mới")
    expect(top).to_contain_text("Trần Văn Bình")

    top.locator("a[href*='/admin/risk_case/details/']").click()
    page.wait_for_url(re.compile(rf"/admin/risk_case/details/\?id={new_high.id}\b"))
    case_url = page.url
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(1)
    expect(timeline.first).to_contain_text("(nguy cơ: Cao)")
    # Only the transitions the domain allows are offered: a new case is verified first.
    options = page.get_by_label("Trạng thái mới").locator("option")
    expect(options).to_have_text(["Đang xác minh"])

    move(page, "Đang xác minh", "Đã gọi điện, người bệnh sốt 38,5 độ")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("Mới → Đang xác minh")
    expect(timeline.nth(1)).to_contain_text("Đã gọi điện, người bệnh sốt 38,5 độ")
    expect(timeline.nth(1)).to_contain_text("Đỗ Thị Hoa (hoa)")

    move(page, "Theo dõi tại nhà", "Cách ly tại nhà, trạm y tế gọi hằng ngày")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(2)).to_contain_text("Đang xác minh → Theo dõi tại nhà")
    expect(timeline.nth(2)).to_contain_text("Cách ly tại nhà, trạm y tế gọi hằng ngày")
    expect(timeline.nth(2)).to_contain_text("Đỗ Thị Hoa (hoa)")
    expect(page.locator("table.searchable tr", has_text="Trạng thái")).to_contain_text("Theo dõi tại nhà")

    assert RiskCase.get_by_id(new_high.id).status == CaseStatus.HOME_MONITORING
    steps = CaseEvent.select().where((CaseEvent.case == new_high.id) & (CaseEvent.kind == CaseEvent.STATUS))
    assert [(e.from_status, e.to_status, e.actor.username) for e in steps.order_by(CaseEvent.id)] == [
        (CaseStatus.NEW, CaseStatus.VERIFYING, "hoa"),
        (CaseStatus.VERIFYING, CaseStatus.HOME_MONITORING, "hoa"),
    ]

    page.get_by_role("button", name="Đăng xuất").click()

    # Another commune's station: its own resident's case only, and the case's URL shows nothing.
    sign_in(page, "tuan", PASSWORD)
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto("/admin/risk_case/")
    body = page.locator("table tbody")
    expect(body).to_contain_text(newer_low.number)
    expect(body).not_to_contain_text(new_high.number)
    expect(body).not_to_contain_text(older_high.number)
    response = page.goto(case_url)
    assert response.status in (200, 404)  # 200: redirected to the list, "record does not exist"
    if response.status == 200:
        expect(page.get_by_text("Hồ sơ không tồn tại.")).to_be_visible()
    for hidden in (new_high.number, "Trần Văn Bình", "0912000001", "Đã gọi điện"):
        expect(page.locator("body")).not_to_contain_text(hidden)
