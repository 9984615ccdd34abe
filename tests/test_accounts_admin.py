"""The system administrator manages units, their jurisdictions and personal accounts."""

import re

import pytest

from models.accounts import Role
from models.accounts import Staff
from models.audit import AuditEvent
from models.units import HealthUnit
from models.units import UnitKind
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import sign_in


@pytest.fixture
def root(app):
    department = make_unit(UnitKind.DEPARTMENT, wards=wards_of(n=4), code="SYT")
    make_staff(department, Role.SYSTEM_ADMIN, username="root")
    client = app.test_client()
    sign_in(client, "root")
    return client, department


def test_a_unit_is_created_with_its_communes(root):
    client, department = root
    wards = wards_of(n=3)
    token = admin_token(client, "/admin/health_unit/new/")
    response = client.post(
        "/admin/health_unit/new/",
        data={
            "csrf_token": token,
            "code": "TTYT-KV1",
            "name": "Trung tâm Y tế khu vực 1",
            "kind": UnitKind.REGIONAL_CENTRE,
            "parent": department.id,
            "province": 22,
            "email": "ttyt1@example.vn",
            "active": "y",
            "wards": [str(w) for w in wards[:2]],
        },
    )
    assert response.status_code == 302
    unit = HealthUnit.get(HealthUnit.code == "TTYT-KV1")
    assert unit.jurisdiction() == frozenset(wards[:2])
    token = admin_token(client, f"/admin/health_unit/edit/?id={unit.id}")
    page = client.get(f"/admin/health_unit/edit/?id={unit.id}").text
    assert re.search(rf'value="{wards[0]}"[^>]*selected|selected[^>]*value="{wards[0]}"', page)
    client.post(
        f"/admin/health_unit/edit/?id={unit.id}",
        data={
            "csrf_token": token,
            "code": "TTYT-KV1",
            "name": "Trung tâm Y tế khu vực 1",
            "kind": UnitKind.REGIONAL_CENTRE,
            "parent": department.id,
            "province": 22,
            "active": "y",
            "wards": [str(wards[2])],
        },
    )
    assert HealthUnit.get_by_id(unit.id).jurisdiction() == frozenset(wards[2:3])


def test_a_new_account_gets_a_one_time_password_shown_once(root):
    client, department = root
    token = admin_token(client, "/admin/staff/new/")
    response = client.post(
        "/admin/staff/new/",
        data={
            "csrf_token": token,
            "username": "Hoa.CDC",
            "full_name": "Trần Thị Hoa",
            "unit": department.id,
            "role": Role.CDC_STAFF,
            "active": "y",
        },
        follow_redirects=True,
    )
    account = Staff.get(Staff.username == "hoa.cdc")
    assert account.must_change_password
    password = re.search(r"hoa\.cdc: (\S+) ", response.text).group(1)
    assert Staff.authenticate("hoa.cdc", password)[1] == "ok"
    assert account.password_hash not in response.text
    assert password not in client.get("/admin/staff/").text
    assert "password_hash" not in client.get(f"/admin/staff/details/?id={account.id}").text
    event = AuditEvent.get((AuditEvent.action == "create") & (AuditEvent.object_type == "staff"))
    assert "password_hash" not in event.detail and password not in event.detail


def test_a_second_account_with_the_same_user_name_is_refused(root):
    client, department = root
    make_staff(department, Role.UNIT_STAFF, username="lan")
    token = admin_token(client, "/admin/staff/new/")
    response = client.post(
        "/admin/staff/new/",
        data={
            "csrf_token": token,
            "username": "LAN",
            "full_name": "Another Lan",
            "unit": department.id,
            "role": Role.UNIT_STAFF,
        },
    )
    assert response.status_code == 200
    assert Staff.select().where(Staff.username == "lan").count() == 1


def test_reset_and_unlock_actions(root):
    client, department = root
    account = make_staff(department, Role.UNIT_STAFF, username="lan")
    for _ in range(5):
        Staff.authenticate("lan", "wrong password")
    assert Staff.get_by_id(account.id).is_locked()
    token = admin_token(client, "/admin/staff/")
    client.post("/admin/staff/action/", data={"csrf_token": token, "action": "unlock", "rowid": [account.id]})
    assert not Staff.get_by_id(account.id).is_locked()
    response = client.post(
        "/admin/staff/action/",
        data={"csrf_token": token, "action": "reset_password", "rowid": [account.id]},
        follow_redirects=True,
    )
    password = re.search(r"lan: (\S+)", response.text).group(1)
    assert Staff.get_by_id(account.id).must_change_password
    assert Staff.authenticate("lan", password)[1] == "ok"
