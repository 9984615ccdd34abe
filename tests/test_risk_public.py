# ruff: noqa: F811  (pytest fixtures imported from tests.test_risk_model are used as arguments)
"""The public declaration: for oneself or on someone's behalf, a code to the phone, routing and the unit's e-mail."""

import datetime
import json
import re

import pytest

from models.audit import AuditEvent
from models.lookup import LookupChallenge
from models.risk import CaseEvent
from models.risk import Declaration
from models.risk import DeclarationDraft
from models.risk import RiskCase
from models.risk import RiskLevel
from services import clock
from services.mail import SmtpBackend
from tests.helpers import csrf_from
from tests.smtp_server import smtp_inbox  # noqa: F401  (fixture)
from tests.test_risk_model import NO_SYMPTOMS
from tests.test_risk_model import checklist  # noqa: F401  (fixture)
from tests.test_risk_model import province  # noqa: F401  (fixture)
from tests.test_risk_model import version  # noqa: F401  (fixture)

NOW = datetime.datetime(2026, 11, 1, 8, 0, 0)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def answers(**changes):
    return {f"q_{code}": value for code, value in {**NO_SYMPTOMS, **changes}.items()}


def form_of(client, version, **fields):
    token = csrf_from(client.get("/declare").text)
    data = {"csrf_token": token, "version": str(version.id), "for_whom": "self", "identify_by": "health_code"}
    data.update(answers())
    data.update(fields)
    return data


def last_sms(app):
    app.extensions["sms"].flush()
    with open(app.config["SMS_OUTBOX"], encoding="utf-8") as outbox:
        return json.loads(outbox.readlines()[-1])


def sms_count(app):
    app.extensions["sms"].flush()
    try:
        with open(app.config["SMS_OUTBOX"], encoding="utf-8") as outbox:
            return len(outbox.readlines())
    except FileNotFoundError:
        return 0


def verify(client, code):
    token = csrf_from(client.get("/declare").text)
    return client.post("/declare/verify", data={"csrf_token": token, "otp": code})


def code_in(message):
    return re.search(r"\b(\d{6})\b", message["text"]).group(1)


def test_a_citizen_declares_with_the_health_code_and_gets_a_number_and_qr(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    data = form_of(client, version, health_code=citizen.health_code, phone="+84 912 000 001", **answers(cough="yes"))
    response = client.post("/declare", data=data)
    assert response.status_code == 200
    assert Declaration.select().count() == 0  # nothing until the code is right
    sms = last_sms(app)
    assert sms["to"] == "0912000001"
    response = verify(client, code_in(sms))
    assert response.status_code == 303 and response.headers["Location"].endswith("/declare/done")
    declaration = Declaration.get()
    assert (declaration.citizen_id, declaration.ward_id, declaration.score) == (citizen.id, citizen.ward_id, 1)
    assert declaration.case.unit_id == province["a"].id
    done = client.get("/declare/done")
    assert declaration.number in done.text and "<svg" in done.text
    assert DeclarationDraft.select().count() == 0
    assert (
        AuditEvent.select().where(AuditEvent.object_type == "declaration", AuditEvent.action == "create").count() == 1
    )


def test_a_declaration_on_someones_behalf_by_details_opens_a_case_in_their_commune(app, client, version, province,
                                                                                    frozen):  # fmt: skip
    ward = province["wards"][1]
    data = form_of(
        client,
        version,
        for_whom="other",
        declarant_name="Nguyễn Văn Con",
        declarant_relation="child",
        identify_by="details",
        full_name="Lê Thị Cúc",
        date_of_birth="04/03/1975",
        ward=str(ward),
        phone="0987654321",
    )
    assert client.post("/declare", data=data).status_code == 200
    sms = last_sms(app)
    assert sms["to"] == "0987654321"  # the helper's phone, typed in
    assert verify(client, code_in(sms)).status_code == 303
    declaration = Declaration.get()
    # Name (any diacritics), date of birth and commune matched the record of Lê Thị Cúc.
    assert declaration.citizen_id == province["citizen_b"].id
    assert (declaration.declarant_name, declaration.declarant_relation) == ("Nguyễn Văn Con", "child")
    assert declaration.case.unit_id == province["b"].id


def test_a_health_code_with_another_phone_gets_the_same_page_and_no_code(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    data = form_of(client, version, health_code=citizen.health_code, phone="0987654321")
    response = client.post("/declare", data=data)
    assert response.status_code == 200 and 'name="otp"' in response.text
    assert sms_count(app) == 0
    challenge = LookupChallenge.get()
    assert not challenge.sent and challenge.purpose == "declare"
    # Whatever is typed, an unsent code never succeeds.
    for guess in ("000000", "123456", "999999"):
        verify(client, guess)
    assert Declaration.select().count() == 0


def test_a_declaration_code_does_not_open_the_record(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    client.post("/declare", data=form_of(client, version, health_code=citizen.health_code, phone="0912000001"))
    code = code_in(last_sms(app))
    with client.session_transaction() as session:
        session["lookup_challenge"] = session["declare_challenge"]
    token = csrf_from(client.get("/lookup").text)
    response = client.post("/lookup/verify", data={"csrf_token": token, "otp": code})
    assert response.status_code == 400
    assert client.get("/record").status_code == 303


BAD_INPUTS = [
    ({"identify_by": "health_code", "health_code": ""}, "health_code", "Mã Y tế cá nhân"),
    ({"identify_by": "health_code", "health_code": "!!"}, "health_code", "Mã Y tế cá nhân"),
    ({"phone": "12345"}, "phone", "Số điện thoại nhận mã"),
    ({"phone": ""}, "phone", "Số điện thoại nhận mã"),
    ({"identify_by": "details", "full_name": "", "date_of_birth": "01/01/1990"}, "full_name", "Họ và tên"),
    ({"identify_by": "details", "full_name": "A", "date_of_birth": "31/02/1990"}, "date_of_birth", "Ngày sinh"),
    ({"identify_by": "details", "full_name": "A", "date_of_birth": "01/01/2999"}, "date_of_birth", "Ngày sinh"),
    ({"identify_by": "details", "full_name": "A", "date_of_birth": "01/01/1990", "ward": "1"}, "ward", "Xã/phường"),
    ({"identify_by": "somehow"}, "identify_by", "Cách xác định người"),
    ({"for_whom": "other", "declarant_name": ""}, "declarant_name", "Họ và tên của bạn"),
    ({"for_whom": "other", "declarant_name": "B", "declarant_relation": "boss"}, "declarant_relation", "Quan hệ"),
    ({"q_fever": ""}, "q_fever", "sốt"),
    ({"q_fever": "perhaps"}, "q_fever", "sốt"),
    ({"q_close_contact": "x"}, "q_close_contact", "tiếp xúc gần"),
    ({"q_temperature": "hot"}, "q_temperature", "Nhiệt độ"),
    ({"q_return_date": "2026/13/45"}, "q_return_date", "Ngày về"),
    ({"q_conditions": "cancer"}, "q_conditions", "bệnh nền"),
]


@pytest.mark.parametrize(("changes", "field", "label_part"), BAD_INPUTS)
def test_bad_inputs_are_named_in_vietnamese_and_store_nothing(app, client, version, province, frozen, changes,
                                                               field, label_part):  # fmt: skip
    citizen = province["citizen_a"]
    data = form_of(client, version, health_code=citizen.health_code, phone="0912000001")
    data.update(changes)
    response = client.post("/declare", data=data)
    assert response.status_code == 400
    summary = re.search(r'<div class="flash error" role="alert">(.*?)</div>', response.text, re.S).group(1)
    assert f'href="#{field}"' in summary and label_part in summary
    assert f'id="{field}-error"' in response.text
    assert sms_count(app) == 0
    assert LookupChallenge.select().count() == DeclarationDraft.select().count() == 0
    assert Declaration.select().count() == RiskCase.select().count() == 0


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"version": "abc"},
        {"version": "999999"},
        {"version": "1", "csrf_token": "forged"},
    ],
)
def test_broken_posts_are_refused_without_a_server_error(client, version, data):
    response = client.post("/declare", data=data)
    assert 300 <= response.status_code < 500
    assert Declaration.select().count() == 0


def test_a_wrong_code_counts_and_the_third_kills_it(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    client.post("/declare", data=form_of(client, version, health_code=citizen.health_code, phone="0912000001"))
    right = code_in(last_sms(app))
    wrong = "000000" if right != "000000" else "111111"
    response = verify(client, wrong)
    assert response.status_code == 400 and "2" in response.text
    verify(client, wrong)
    verify(client, wrong)
    assert verify(client, right).status_code == 303  # back to the start, nothing declared
    assert Declaration.select().count() == 0


def test_codes_are_limited_per_phone(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    for _ in range(3):
        data = form_of(client, version, health_code=citizen.health_code, phone="0912000001")
        assert client.post("/declare", data=data).status_code == 200
    data = form_of(client, version, health_code=citizen.health_code, phone="0912000001")
    assert client.post("/declare", data=data).status_code == 429
    assert sms_count(app) == 3


def test_a_second_declaration_joins_the_open_case(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    for _ in range(2):
        client.post("/declare", data=form_of(client, version, health_code=citizen.health_code, phone="0912000001"))
        assert verify(client, code_in(last_sms(app))).status_code == 303
    assert Declaration.select().count() == 2 and RiskCase.select().count() == 1
    assert CaseEvent.select().where(CaseEvent.kind == CaseEvent.DECLARED).count() == 2


def test_past_declarations_show_on_the_record_after_a_lookup(app, client, version, province, frozen):
    citizen = province["citizen_a"]
    client.post("/declare", data=form_of(client, version, health_code=citizen.health_code, phone="0912000001"))
    verify(client, code_in(last_sms(app)))
    number = Declaration.get().number
    token = csrf_from(client.get("/lookup").text)
    client.post("/lookup", data={"csrf_token": token, "health_code": citizen.health_code, "phone": "0912000001"})
    token = csrf_from(client.get("/lookup").text)
    assert client.post("/lookup/verify", data={"csrf_token": token, "otp": code_in(last_sms(app))}).status_code == 303
    record = client.get("/record").text
    assert number in record and "Bảng kiểm nguy cơ bệnh truyền nhiễm" in record


def test_a_high_risk_declaration_mails_the_unit_without_personal_data(app, client, version, province, frozen,
                                                                      smtp_inbox):  # noqa: F811  # fmt: skip
    url, inbox = smtp_inbox
    app.extensions["mail"].backend = SmtpBackend(url)
    citizen = province["citizen_a"]
    data = form_of(client, version, health_code=citizen.health_code, phone="0912000001",
                   **answers(close_contact="confirmed", fever="yes"))  # fmt: skip
    client.post("/declare", data=data)
    verify(client, code_in(last_sms(app)))
    app.extensions["mail"].flush()
    assert inbox.received.wait(5)
    ((recipients, message),) = inbox.messages
    case = RiskCase.get()
    assert case.risk_level == RiskLevel.HIGH
    assert recipients == ["tyt-a@example.vn"]
    body = message.get_content()
    assert case.number in message["Subject"] and case.number in body
    assert "Cao" in body
    assert f"/admin/risk_case/details/?id={case.id}" in body
    for personal in (citizen.full_name, "Trần", citizen.phone, citizen.health_code, "sốt", "tiếp xúc"):
        assert personal not in body and personal not in message["Subject"]


def test_a_low_risk_declaration_mails_nobody(app, client, version, province, frozen, smtp_inbox):  # noqa: F811
    url, inbox = smtp_inbox
    app.extensions["mail"].backend = SmtpBackend(url)
    citizen = province["citizen_a"]
    client.post("/declare", data=form_of(client, version, health_code=citizen.health_code, phone="0912000001"))
    verify(client, code_in(last_sms(app)))
    app.extensions["mail"].flush()
    assert Declaration.get().risk_level == RiskLevel.LOW
    assert inbox.messages == []


def test_the_form_offers_only_published_checklists(client, version):
    page = client.get("/declare")
    assert page.status_code == 200 and "q_fever" in page.text
    assert client.get("/declare?checklist=999999").status_code == 404
