# ruff: noqa: F811  (pytest fixtures imported from tests.test_risk_model are used as arguments)
"""The triage queue in the back office: scoped on every path, transitions, assignment, bulk changes, audit."""

import datetime
import re

import pytest

from models.accounts import Role
from models.audit import AuditEvent
from models.risk import CaseEvent
from models.risk import CaseStatus
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import declare
from services import clock
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.helpers import admin_token
from tests.helpers import sign_in
from tests.test_risk_model import NO_SYMPTOMS
from tests.test_risk_model import checklist  # noqa: F401  (fixture)
from tests.test_risk_model import person_of
from tests.test_risk_model import province  # noqa: F401  (fixture)
from tests.test_risk_model import version  # noqa: F401  (fixture)

NOW = datetime.datetime(2026, 11, 1, 8, 0, 0)
HIGH = {**NO_SYMPTOMS, "close_contact": "confirmed", "fever": "yes"}


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def frozen(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
def trio(app, version, province, frozen):
    """Owner (the commune's station), colleague (same station), outsider (another commune's station), CDC."""
    accounts = {
        "owner": make_staff(province["a"], username="owner", full_name="Chủ Ca"),
        "colleague": make_staff(province["a"], username="colleague", full_name="Đồng Nghiệp"),
        "outsider": make_staff(province["b"], username="outsider", full_name="Người Ngoài"),
        "cdc": make_staff(province["cdc"], role=Role.CDC_STAFF, username="cdc", full_name="Cán Bộ CDC"),
        "leader": make_staff(province["department"], role=Role.DEPARTMENT_LEADER, username="leader"),
        "clerk": make_staff(province["a"], role=Role.DATA_CLERK, username="clerk"),
    }
    _d, own_case, _ = declare(version, person_of(province["citizen_a"]), HIGH, NOW)
    _d, foreign_case, _ = declare(version, person_of(province["citizen_b"]), dict(NO_SYMPTOMS), NOW)
    return {**accounts, "own": own_case, "foreign": foreign_case}


def signed_in(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def move(client, case, status, note=""):
    token = admin_token(client, f"/admin/risk_case/details/?id={case.id}")
    return client.post("/admin/risk_case/move/", data={"csrf_token": token, "id": case.id, "status": status,
                                                       "note": note})  # fmt: skip


def test_the_queue_shows_high_risk_first_within_the_scope(app, trio, version, province, frozen):
    frozen.now = NOW + datetime.timedelta(hours=1)
    later_low = make_citizen(province["wards"][0], full_name="Mới Thấp", phone="0912000009")
    declare(version, person_of(later_low), dict(NO_SYMPTOMS), frozen.now)
    owner = signed_in(app, "owner").get("/admin/risk_case/").text
    numbers = re.findall(r"\bCA-[0-9A-Z]{8}\b", owner)
    own_low = RiskCase.get(RiskCase.citizen == later_low.id).number
    assert numbers.index(trio["own"].number) < numbers.index(own_low)  # high before a newer low
    assert trio["foreign"].number not in owner
    cdc = signed_in(app, "cdc").get("/admin/risk_case/").text
    assert trio["own"].number in cdc and trio["foreign"].number in cdc


@pytest.mark.parametrize(
    ("who", "sees_own", "sees_foreign"),
    [
        ("owner", True, False),
        ("colleague", True, False),
        ("outsider", False, True),
        ("cdc", True, True),
        ("leader", True, True),
    ],
)
def test_every_path_is_scoped(app, trio, who, sees_own, sees_foreign):
    client = signed_in(app, who)
    for key, sees in (("own", sees_own), ("foreign", sees_foreign)):
        case = trio[key]
        listing = client.get("/admin/risk_case/").text
        assert (case.number in listing) == sees
        details = client.get(f"/admin/risk_case/details/?id={case.id}")
        assert (case.number in details.text) == sees, f"{who} details of {key}"
        if not sees:
            assert details.status_code == 302  # "Record does not exist"
        export = client.get("/admin/risk_case/export/csv/")
        assert export.status_code == 200 and (case.number in export.text) == sees
    # Never editable or deletable through the generic forms, by anyone.
    assert client.get(f"/admin/risk_case/edit/?id={trio['own'].id}").status_code in (302, 403)
    assert client.post("/admin/risk_case/delete/", data={"id": trio["own"].id}).status_code in (302, 403)
    assert RiskCase.select().count() == 2


def test_a_data_clerk_has_no_queue(app, trio):
    assert signed_in(app, "clerk").get("/admin/risk_case/").status_code == 403


def test_a_transition_through_the_page_is_recorded_and_audited(app, trio, frozen):
    client = signed_in(app, "owner")
    frozen.now = NOW + datetime.timedelta(hours=2)
    response = move(client, trio["own"], CaseStatus.VERIFYING, note="Đã gọi, hẹn xét nghiệm")
    assert response.status_code == 302
    case = RiskCase.get_by_id(trio["own"].id)
    assert case.status == CaseStatus.VERIFYING and case.touched_at == frozen.now
    page = client.get(f"/admin/risk_case/details/?id={case.id}").text
    assert "Đã gọi, hẹn xét nghiệm" in page and "Chủ Ca" in page
    event = AuditEvent.select().where(AuditEvent.object_type == "risk_case", AuditEvent.action == "update").get()
    assert event.details["changes"] == {"status": ["new", "verifying"]}
    assert event.actor == "owner" and event.citizen_id == case.citizen_id
    views = AuditEvent.select().where(AuditEvent.object_type == "risk_case", AuditEvent.action == "view").count()
    assert views >= 1


def test_the_case_page_gives_every_field_its_own_id_and_label(app, trio):
    # Two forms on one page: a repeated id would tie the second form's labels to the first.
    client = signed_in(app, "owner")
    page = client.get(f"/admin/risk_case/details/?id={trio['own'].id}").text
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for target in re.findall(r'<label for="([^"]+)"', page):
        assert target in ids


def test_a_refused_transition_changes_nothing(app, trio):
    client = signed_in(app, "owner")
    response = move(client, trio["own"], CaseStatus.CONFIRMED)
    assert response.status_code == 302
    assert RiskCase.get_by_id(trio["own"].id).status == CaseStatus.NEW
    assert not CaseEvent.select().where(CaseEvent.kind == CaseEvent.STATUS).exists()
    assert not AuditEvent.select().where(AuditEvent.action == "update").exists()


def test_the_outsider_cannot_move_or_assign_a_foreign_case(app, trio):
    client = signed_in(app, "outsider")
    token = admin_token(client, f"/admin/risk_case/details/?id={trio['foreign'].id}")
    own = trio["own"]
    response = client.post("/admin/risk_case/move/", data={"csrf_token": token, "id": own.id, "status": "verifying"})
    assert response.status_code == 404
    response = client.post(
        "/admin/risk_case/assign/", data={"csrf_token": token, "id": own.id, "assignee": trio["outsider"].id}
    )
    assert response.status_code == 404
    assert RiskCase.get_by_id(own.id).status == CaseStatus.NEW and RiskCase.get_by_id(own.id).assignee_id is None


def test_assignment_offers_and_accepts_only_staff_who_see_the_case(app, trio):
    client = signed_in(app, "cdc")
    own = trio["own"]
    page = client.get(f"/admin/risk_case/details/?id={own.id}").text
    assert "Chủ Ca" in page and "Người Ngoài" not in page
    token = admin_token(client, f"/admin/risk_case/details/?id={own.id}")
    client.post("/admin/risk_case/assign/", data={"csrf_token": token, "id": own.id, "assignee": trio["outsider"].id})
    assert RiskCase.get_by_id(own.id).assignee_id is None
    client.post("/admin/risk_case/assign/", data={"csrf_token": token, "id": own.id, "assignee": trio["owner"].id})
    assert RiskCase.get_by_id(own.id).assignee_id == trio["owner"].id


def action(client, name, ids):
    token = admin_token(client, "/admin/risk_case/")
    return client.post("/admin/risk_case/action/", data={"csrf_token": token, "action": name, "rowid": ids})


def test_bulk_status_change_skips_cases_out_of_scope_and_refused_moves(app, trio, version, province):
    extra = make_citizen(province["wards"][0], full_name="Thêm Một", phone="0912000008")
    _d, second, _ = declare(version, person_of(extra), dict(NO_SYMPTOMS), NOW)
    RiskCase.update(status=CaseStatus.VERIFYING).where(RiskCase.id == second.id).execute()
    client = signed_in(app, "owner")
    response = action(client, "bulk_move", [trio["own"].id, second.id, trio["foreign"].id])
    assert response.status_code == 302
    bulk_url = response.headers["Location"]
    page = client.get(bulk_url).text
    assert trio["own"].number in page and second.number in page and trio["foreign"].number not in page
    token = admin_token(client, bulk_url)
    ids = ",".join(str(i) for i in (trio["own"].id, second.id, trio["foreign"].id))
    client.post("/admin/risk_case/bulk/", data={"csrf_token": token, "kind": "move", "ids": ids,
                                                 "status": CaseStatus.VERIFYING, "note": "Hàng loạt"})  # fmt: skip
    assert RiskCase.get_by_id(trio["own"].id).status == CaseStatus.VERIFYING
    assert RiskCase.get_by_id(second.id).status == CaseStatus.VERIFYING  # verifying -> verifying refused
    assert CaseEvent.select().where(CaseEvent.case == second.id, CaseEvent.kind == CaseEvent.STATUS).count() == 0
    assert RiskCase.get_by_id(trio["foreign"].id).status == CaseStatus.NEW


def test_bulk_assignment_only_to_staff_who_see_every_case(app, trio):
    client = signed_in(app, "cdc")
    ids = f"{trio['own'].id},{trio['foreign'].id}"
    url = f"/admin/risk_case/bulk/?kind=assign&ids={ids}"
    page = client.get(url).text
    assert "Cán Bộ CDC" in page and "Chủ Ca" not in page  # the owner cannot see the foreign case
    token = admin_token(client, url)
    client.post("/admin/risk_case/bulk/", data={"csrf_token": token, "kind": "assign", "ids": ids,
                                                 "assignee": trio["owner"].id})  # fmt: skip
    assert RiskCase.get_by_id(trio["own"].id).assignee_id == trio["owner"].id
    assert RiskCase.get_by_id(trio["foreign"].id).assignee_id is None  # refused for the foreign one
    client.post("/admin/risk_case/bulk/", data={"csrf_token": token, "kind": "assign", "ids": ids,
                                                 "assignee": trio["cdc"].id})  # fmt: skip
    assert {c.assignee_id for c in RiskCase.select()} == {trio["cdc"].id}


def filter_url(client, label):
    page = client.get("/admin/risk_case/").text
    match = re.search(r'<a class="nav-link saved-filter" href="([^"]+)">' + re.escape(label), page)
    return match.group(1).replace("&amp;", "&")


def test_saved_filters_my_open_cases_and_untouched_for_24_hours(app, trio, frozen):
    own = RiskCase.get_by_id(trio["own"].id)
    own.assign(trio["owner"], by=trio["cdc"].id, now=NOW)
    client = signed_in(app, "cdc")
    frozen.now = NOW + datetime.timedelta(hours=23)
    untouched = filter_url(client, "Chưa xử lý 24 giờ")
    assert "CA-" not in client.get(untouched).text
    frozen.now = NOW + datetime.timedelta(hours=25)
    page = client.get(untouched).text
    assert trio["own"].number in page and trio["foreign"].number in page
    assert "untouched" in client.get("/admin/risk_case/").text  # they stand out in the queue too
    owner = signed_in(app, "owner")
    mine = owner.get(filter_url(owner, "Ca đang mở của tôi")).text
    assert trio["own"].number in mine
    colleague = signed_in(app, "colleague")
    assert trio["own"].number not in colleague.get(filter_url(colleague, "Ca đang mở của tôi")).text


def test_queue_filters_by_risk_and_commune(app, trio, province):
    client = signed_in(app, "cdc")
    high = client.get("/admin/risk_case/?flt0_0=" + RiskLevel.HIGH).text
    assert trio["own"].number in high and trio["foreign"].number not in high
    ward = client.get(f"/admin/risk_case/?flt0_3={province['wards'][1]}").text
    assert trio["foreign"].number in ward and trio["own"].number not in ward
