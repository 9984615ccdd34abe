"""The citizen's lookup: health code + phone, an SMS code, the record; limits and expiry under a moved clock."""

import datetime
import json
import logging
import re
import threading

import pytest

from models.accounts import Role
from models.audit import AuditEvent
from models.base import db
from models.citizens import Citizen
from models.corrections import CorrectionRequest
from models.lookup import LookupChallenge
from models.lookup import RateEvent
from models.records import Encounter
from models.units import UnitKind
from services import clock
from services import otp
from services import rate_limits
from services.sms import Dispatcher
from services.sms import HttpBackend
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import csrf_from
from tests.helpers import sign_in

PHONE = "0912345678"
START = datetime.datetime(2026, 11, 1, 8, 0, 0)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def frozen(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
def citizen(app):
    ward = wards_of(n=1)[0]
    person = make_citizen(
        ward,
        full_name="Nguyễn Thị Mai",
        phone=PHONE,
        national_id="022190000123",
        date_of_birth=datetime.date(1990, 5, 6),
        gender="F",
    )
    Encounter.create(
        citizen=person, date=datetime.date(2025, 3, 4), facility_name="Bệnh viện Bãi Cháy", diagnosis="Viêm họng"
    )
    return person


def outbox(app):
    app.extensions["sms"].flush()
    path = app.config["SMS_OUTBOX"]
    try:
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines]
    except FileNotFoundError:
        return []


def last_code(app):
    return re.search(r"\b(\d{6})\b", outbox(app)[-1]["text"]).group(1)


def ask(client, health_code, phone=PHONE):
    token = csrf_from(client.get("/lookup").text)
    return client.post("/lookup", data={"health_code": health_code, "phone": phone, "csrf_token": token})


def verify(client, code, page):
    return client.post("/lookup/verify", data={"otp": code, "csrf_token": csrf_from(page.text)})


def without_token(html):
    return re.sub(r'value="[^"]{30,}"', "", html)


def test_the_whole_lookup_reaches_the_record(app, client, citizen, frozen):
    page = client.get("/lookup")
    assert page.status_code == 200
    for name in ("health_code", "phone", "csrf_token"):
        assert f'name="{name}"' in page.text
    response = ask(client, citizen.health_code, "+84 912 345 678")
    assert response.status_code == 200
    assert 'name="otp"' in response.text and 'action="/lookup/verify"' in response.text
    messages = outbox(app)
    assert [m["to"] for m in messages] == [PHONE]
    assert messages[0]["text"].isascii()
    assert "5 phut" in messages[0]["text"]
    answer = verify(client, last_code(app), response)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/record"
    assert last_code(app) not in answer.headers["Location"]
    record = client.get("/record")
    assert record.status_code == 200
    assert "Nguyễn Thị Mai" in record.text
    assert "Viêm họng" in record.text
    assert "022190000123" not in record.text and "123" in record.text
    assert record.headers["Cache-Control"] == "no-store"
    outcomes = [
        e.details["outcome"] for e in AuditEvent.select().where(AuditEvent.action == "lookup").order_by(AuditEvent.id)
    ]
    assert outcomes == ["sent", "code_ok"]
    view = AuditEvent.get(AuditEvent.action == "view")
    assert (view.citizen_id, view.actor_id, view.details["by"]) == (citizen.id, None, "citizen")


def test_a_mismatch_looks_exactly_like_a_match_and_sends_nothing(app, citizen, frozen):
    matched, unmatched, unknown = app.test_client(), app.test_client(), app.test_client()
    good = ask(matched, citizen.health_code)
    wrong_phone = ask(unmatched, citizen.health_code, "0987654321")
    no_such_code = ask(unknown, "221234567897")
    assert good.status_code == wrong_phone.status_code == no_such_code.status_code == 200
    assert without_token(good.text) == without_token(wrong_phone.text) == without_token(no_such_code.text)
    assert len(outbox(app)) == 1
    # Whatever is typed for the mismatched challenge, it never opens a record.
    assert verify(unmatched, "000000", wrong_phone).status_code == 400


def test_a_malformed_phone_names_the_field(client, citizen, frozen):
    response = ask(client, citizen.health_code, "12345")
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
    assert LookupChallenge.select().count() == 0


def test_three_wrong_codes_kill_the_challenge(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    code = last_code(app)
    wrong = "000000" if code != "000000" else "111111"
    assert verify(client, wrong, page).status_code == 400
    assert verify(client, wrong, page).status_code == 400
    assert verify(client, wrong, page).status_code == 400
    assert verify(client, code, page).status_code == 400
    assert client.get("/record").status_code == 303


def test_a_code_expires_after_five_minutes(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    frozen.advance(minutes=5, seconds=1)
    assert verify(client, last_code(app), page).status_code == 400
    assert client.get("/record").status_code == 303


def test_a_code_works_just_before_it_expires(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    frozen.advance(minutes=4, seconds=59)
    assert verify(client, last_code(app), page).status_code == 303


def test_a_code_is_bound_to_the_browser_that_asked(app, citizen, frozen):
    asker, other = app.test_client(), app.test_client()
    ask(asker, citizen.health_code)
    page = other.get("/lookup")
    assert (
        other.post("/lookup/verify", data={"otp": last_code(app), "csrf_token": csrf_from(page.text)}).status_code
        == 400
    )
    assert other.get("/record").status_code == 303


def test_a_code_is_single_use(app, citizen, frozen):
    key = app.config["SECRET_KEY"]
    challenge, code = otp.start(key, START, citizen.id, PHONE, citizen.health_code)
    assert otp.check(key, challenge.token, code, START)[0] == "ok"
    assert otp.check(key, challenge.token, code, START)[0] == "dead"


def test_codes_are_stored_only_as_keyed_hashes(app, citizen, frozen):
    challenge, code = otp.start(app.config["SECRET_KEY"], START, citizen.id, PHONE, citizen.health_code)
    stored = LookupChallenge.get_by_id(challenge.id)
    assert code not in stored.code_hash
    assert len(stored.code_hash) == 64


def test_a_new_code_replaces_the_previous_one(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    first = last_code(app)
    resent = client.post("/lookup/resend", data={"csrf_token": csrf_from(page.text)})
    assert resent.status_code == 200
    second = last_code(app)
    assert len(outbox(app)) == 2
    if first != second:
        assert verify(client, first, resent).status_code == 400
    assert verify(client, second, resent).status_code == 303


def test_three_sends_per_phone_an_hour(app, citizen, frozen):
    for _ in range(3):
        assert ask(app.test_client(), citizen.health_code).status_code == 200
    refused = ask(app.test_client(), citizen.health_code)
    assert refused.status_code == 429
    assert len(outbox(app)) == 3
    frozen.advance(hours=1, seconds=1)
    assert ask(app.test_client(), citizen.health_code).status_code == 200


def test_the_limit_counts_mismatches_too_so_it_reveals_nothing(app, citizen, frozen):
    for _ in range(3):
        ask(app.test_client(), "221234567897")
    assert ask(app.test_client(), "221234567897").status_code == 429
    assert outbox(app) == []


def test_three_sends_per_health_code_an_hour_whatever_the_phone(app, citizen, frozen):
    for phone in ("0912000001", "0912000002", "0912000003"):
        ask(app.test_client(), citizen.health_code, phone)
    assert ask(app.test_client(), citizen.health_code).status_code == 429


def test_ten_sends_per_phone_a_day(app, citizen, frozen):
    for _ in range(10):
        assert ask(app.test_client(), citizen.health_code).status_code == 200
        frozen.advance(minutes=61)
    assert ask(app.test_client(), citizen.health_code).status_code == 429
    frozen.advance(hours=14)
    assert ask(app.test_client(), citizen.health_code).status_code == 200


def test_one_address_cannot_spray_many_phones(app, citizen, frozen):
    statuses = [ask(app.test_client(), f"22{n:09d}1", f"09120{n:05d}").status_code for n in range(21)]
    assert statuses[:20] == [200] * 20
    assert statuses[20] == 429


def test_limits_hold_across_server_processes(app, citizen, frozen):
    """Two app instances (as two waitress processes) share the limits through the database."""
    from app import create_app

    second = create_app(dict(app.config))
    for _ in range(2):
        ask(app.test_client(), citizen.health_code)
    ask(second.test_client(), citizen.health_code)
    assert ask(second.test_client(), citizen.health_code).status_code == 429
    second.extensions["sms"].flush()


def test_the_session_ends_after_fifteen_minutes(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    verify(client, last_code(app), page)
    frozen.advance(minutes=14)
    assert client.get("/record").status_code == 200
    frozen.advance(minutes=1, seconds=1)
    assert client.get("/record").status_code == 303


def test_signing_out_ends_the_session_even_for_a_copied_cookie(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    verify(client, last_code(app), page)
    cookie = client.get_cookie("session").value
    record = client.get("/record")
    client.post("/record/sign-out", data={"csrf_token": csrf_from(record.text)})
    assert client.get("/record").status_code == 303
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/record").status_code == 303


def test_the_session_is_renewed_on_verification(app, client, citizen, frozen):
    page = ask(client, citizen.health_code)
    before = client.get_cookie("session").value
    verify(client, last_code(app), page)
    after = client.get_cookie("session").value
    assert before != after
    with client.session_transaction() as session:
        assert "lookup_challenge" not in session
        assert not session.permanent


def test_the_code_is_never_logged(app, client, citizen, frozen, caplog):
    caplog.set_level(logging.DEBUG)
    page = ask(client, citizen.health_code)
    code = last_code(app)
    verify(client, code, page)
    assert code not in caplog.text
    assert all(code not in (e.detail or "") for e in AuditEvent.select())


def test_a_failing_gateway_means_try_again_later_for_everyone(app, citizen, frozen, gateway, caplog):
    app.extensions["sms"] = Dispatcher(HttpBackend(gateway.url, retries=1, sleep=lambda s: None))
    gateway.statuses = [500] * 6
    for _ in range(3):
        assert ask(app.test_client(), citizen.health_code).status_code == 200
    app.extensions["sms"].flush()
    assert len(gateway.received) == 6
    assert "not delivered" in caplog.text
    for health_code in (citizen.health_code, "221234567897"):
        refused = ask(app.test_client(), health_code)
        assert refused.status_code == 503
        assert "Vui lòng thử lại sau" in refused.text
    assert len(gateway.received) == 6
    outcomes = [e.details.get("outcome") for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert outcomes.count("sms_unavailable") == 2


def test_the_citizen_sees_which_staff_viewed_the_record(app, client, citizen, frozen):
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[citizen.ward_id], name="Trạm Y tế Hà Lầm")
    make_staff(station, Role.UNIT_STAFF, username="lan")
    staff = app.test_client()
    sign_in(staff, "lan")
    staff.get(f"/admin/citizen/details/?id={citizen.id}")
    page = ask(client, citizen.health_code)
    verify(client, last_code(app), page)
    assert "Trạm Y tế Hà Lầm" in client.get("/record").text


def test_a_correction_request_is_accepted_by_the_commune(app, client, citizen, frozen):
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[citizen.ward_id])
    make_staff(station, Role.UNIT_STAFF, username="lan")
    page = ask(client, citizen.health_code)
    verify(client, last_code(app), page)
    record = client.get("/record")
    sent = client.post(
        "/record/correction",
        data={
            "field": "permanent_address",
            "proposed_value": "Số 9, tổ 4, Hà Lầm",
            "note": "Đã chuyển nhà",
            "csrf_token": csrf_from(record.text),
        },
    )
    assert sent.status_code == 303
    request = CorrectionRequest.get()
    staff = app.test_client()
    sign_in(staff, "lan")
    assert "Số 9, tổ 4, Hà Lầm" in staff.get("/admin/correction_request/").text
    token = admin_token(staff, f"/admin/correction_request/details/?id={request.id}")
    staff.post("/admin/correction_request/decide/", data={"id": request.id, "decision": "accept", "csrf_token": token})
    assert Citizen.get_by_id(citizen.id).permanent_address == "Số 9, tổ 4, Hà Lầm"
    assert CorrectionRequest.get_by_id(request.id).status == "accepted"
    change = AuditEvent.get((AuditEvent.action == "update") & (AuditEvent.citizen_id == citizen.id))
    assert change.details["changes"]["permanent_address"][1] == "Số 9, tổ 4, Hà Lầm"
    assert "Số 9, tổ 4, Hà Lầm" in client.get("/record").text


def test_a_bad_correction_is_rejected_with_a_reason_and_changes_nothing(app, client, citizen, frozen):
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[citizen.ward_id])
    make_staff(station, Role.UNIT_STAFF, username="lan")
    request = CorrectionRequest.create(citizen=citizen, field="phone", proposed_value="12")
    staff = app.test_client()
    sign_in(staff, "lan")
    token = admin_token(staff, f"/admin/correction_request/details/?id={request.id}")
    staff.post("/admin/correction_request/decide/", data={"id": request.id, "decision": "accept", "csrf_token": token})
    assert Citizen.get_by_id(citizen.id).phone == PHONE
    assert CorrectionRequest.get_by_id(request.id).status == "pending"
    staff.post(
        "/admin/correction_request/decide/",
        data={"id": request.id, "decision": "reject", "reason": "Số điện thoại không hợp lệ", "csrf_token": token},
    )
    assert CorrectionRequest.get_by_id(request.id).status == "rejected"
    page = ask(client, citizen.health_code)
    verify(client, last_code(app), page)
    assert "Số điện thoại không hợp lệ" in client.get("/record").text


def test_a_foreign_commune_cannot_decide_a_correction(app, citizen, frozen):
    far = make_unit(UnitKind.COMMUNE_STATION, wards=wards_of()[20:21])
    make_staff(far, Role.UNIT_STAFF, username="far")
    request = CorrectionRequest.create(citizen=citizen, field="occupation", proposed_value="Giáo viên")
    staff = app.test_client()
    sign_in(staff, "far")
    assert "Giáo viên" not in staff.get("/admin/correction_request/").text
    token = admin_token(staff, "/admin/citizen/new/")
    response = staff.post(
        "/admin/correction_request/decide/", data={"id": request.id, "decision": "accept", "csrf_token": token}
    )
    assert response.status_code == 404
    assert CorrectionRequest.get_by_id(request.id).status == "pending"


def test_the_station_issues_a_code_and_prints_a_slip(app, citizen, frozen):
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[citizen.ward_id])
    make_staff(station, Role.UNIT_STAFF, username="lan")
    Citizen.update(health_code=None).where(Citizen.id == citizen.id).execute()
    staff = app.test_client()
    sign_in(staff, "lan")
    token = admin_token(staff, f"/admin/citizen/details/?id={citizen.id}")
    staff.post("/admin/citizen/issue-code/", data={"id": citizen.id, "csrf_token": token})
    issued = Citizen.get_by_id(citizen.id).health_code
    assert issued and issued.startswith("22")
    slip = staff.get(f"/admin/citizen/slip/?id={citizen.id}")
    assert slip.status_code == 200
    assert issued in slip.text and "<svg" in slip.text and "/lookup" in slip.text


def test_bad_requests_get_4xx_not_5xx(client, citizen, frozen):
    assert client.post("/lookup", data={}).status_code == 400
    assert client.post("/lookup/verify", data={"otp": "abcdef"}).status_code == 400
    assert client.post("/lookup/resend", data={}).status_code == 303
    assert client.post("/record/correction", data={}).status_code == 303
    assert client.get("/record").status_code == 303


def test_simultaneous_requests_cannot_overspend_a_limit(app, citizen, frozen):
    # Eight requests at once for one phone, each on its own connection as in separate processes.
    keys = rate_limits.keys_for(PHONE, citizen.health_code, "203.0.113.7")
    start = threading.Barrier(8)
    outcomes = []

    def request():
        db.connect(reuse_if_open=True)
        try:
            start.wait()
            outcomes.append(rate_limits.allow(keys, START))
        finally:
            db.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 5 + [True] * 3
    assert RateEvent.select().where(RateEvent.key == f"phone:{PHONE}").count() == 3


def test_the_record_page_speaks_the_chosen_language_in_the_correction_form(app, client, citizen):
    # The form's fields are rendered once per language and kept: one language must never leak into another.
    page = ask(client, citizen.health_code)
    assert verify(client, last_code(app), page).status_code == 303
    vietnamese = client.get("/record").text
    assert "Thông tin cần điều chỉnh" in vietnamese
    client.get("/lang/en?next=/record")
    english = client.get("/record").text
    assert "Detail to correct" in english and "Detail to correct" not in vietnamese
    client.get("/lang/vi?next=/record")
    assert client.get("/record").text.count('name="csrf_token"') == 2  # the correction form and sign-out
