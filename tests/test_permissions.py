"""Every role × every view × own / foreign jurisdiction × every path.

The expectations are written out by hand here, not derived from the code's tables,
so a change to the permission table has to be a deliberate change to this file too.
"""

import datetime
import json

import pytest

from models.accounts import Role
from models.citizens import Citizen
from models.citizens import Household
from models.records import Encounter
from models.units import UnitKind
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import csrf_from
from tests.helpers import sign_in

ROLES = {
    "admin": Role.SYSTEM_ADMIN,
    "leader": Role.DEPARTMENT_LEADER,
    "cdc": Role.CDC_STAFF,
    "station": Role.UNIT_STAFF,
    "clerk": Role.DATA_CLERK,
}
# Who sees the citizen outside the CDC's and the station's communes.
SEES_FOREIGN = {"admin", "leader"}
CAN_EDIT = {"admin", "cdc", "station", "clerk"}
CAN_DELETE_CITIZEN = {"admin"}
CAN_EXPORT = {"admin", "leader", "cdc", "station"}


@pytest.fixture
def world(app):
    """A department and CDC over four communes, a station over one, a citizen inside and one outside."""
    wards = wards_of()
    department = make_unit(UnitKind.DEPARTMENT, wards=wards[:4], code="SYT")
    cdc = make_unit(UnitKind.CDC, wards=wards[:4], parent=department, code="CDC")
    station = make_unit(UnitKind.COMMUNE_STATION, wards=wards[:1], parent=cdc, code="TYT")
    far_station = make_unit(UnitKind.COMMUNE_STATION, wards=wards[10:11], code="TYT2")
    units = {"admin": department, "leader": department, "cdc": cdc, "station": station, "clerk": station}
    accounts = {key: make_staff(units[key], role, username=key) for key, role in ROLES.items()}
    own_household = Household.create(book_number="HK-OWN", ward=wards[0])
    far_household = Household.create(book_number="HK-FAR", ward=wards[10])
    own = make_citizen(wards[0], full_name="Trần Thị Nội", household=own_household, phone="0912000001")
    foreign = make_citizen(wards[10], full_name="Lê Văn Ngoại", household=far_household, phone="0912000002")
    bare_own = make_citizen(wards[0], full_name="Phạm Văn Trống")
    bare_foreign = make_citizen(wards[10], full_name="Phạm Văn Xa")
    today = datetime.date.today()
    encounters = {
        "own": Encounter.create(citizen=own, date=today, facility_name="BV tỉnh", diagnosis="Sốt xuất huyết"),
        "foreign": Encounter.create(citizen=foreign, date=today, facility_name="BV tỉnh", diagnosis="Sởi"),
    }
    return {
        "accounts": accounts,
        "citizens": {"own": own, "foreign": foreign},
        "bare": {"own": bare_own, "foreign": bare_foreign},
        "households": {"own": own_household, "foreign": far_household},
        "encounters": encounters,
        "far_station": far_station,
    }


def expected_visible(role, where):
    return where == "own" or role in SEES_FOREIGN


def signed_in(app, role):
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "foreign"])
def test_citizen_list_detail_and_export(app, world, role, where):
    client = signed_in(app, role)
    citizen = world["citizens"][where]
    visible = expected_visible(role, where)

    assert (citizen.full_name in client.get("/admin/citizen/").text) is visible
    # The search box echoes the name, so look for the health code, which only a result row shows.
    assert (citizen.health_code in client.get("/admin/citizen/?search=" + citizen.full_name).text) is visible

    details = client.get(f"/admin/citizen/details/?id={citizen.id}")
    assert (details.status_code == 200) is visible
    assert (citizen.full_name in details.text) is visible

    export = client.get("/admin/citizen/export/csv/")
    if role in CAN_EXPORT:
        assert export.status_code == 200
        assert (citizen.health_code in export.get_data(as_text=True)) is visible
    else:
        assert export.status_code == 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "foreign"])
def test_citizen_edit_by_url_id(app, world, role, where):
    client = signed_in(app, role)
    citizen = world["citizens"][where]
    own = world["citizens"]["own"]
    allowed = role in CAN_EDIT and expected_visible(role, where)
    # A valid Flask-Admin token from a page the account can open, so only permission decides.
    token = admin_token(client, f"/admin/citizen/edit/?id={own.id}") if role in CAN_EDIT else "x"
    form = {
        "csrf_token": token,
        "full_name": "Đổi Tên",
        "ward": str(citizen.ward_id),
        "health_code": citizen.health_code,
        "phone": "0987654321",
    }
    response = client.post(f"/admin/citizen/edit/?id={citizen.id}", data=form)
    assert response.status_code in (302, 403)
    stored = Citizen.get_by_id(citizen.id)
    assert (stored.full_name == "Đổi Tên") is allowed
    assert (stored.phone == "0987654321") is allowed


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "foreign"])
def test_citizen_delete_by_id_and_by_bulk_action(app, world, role, where):
    client = signed_in(app, role)
    citizen = world["bare"][where]
    allowed = role in CAN_DELETE_CITIZEN and expected_visible(role, where)
    token = admin_token(client, "/admin/citizen/") if role in CAN_DELETE_CITIZEN else "x"
    client.post("/admin/citizen/delete/", data={"id": citizen.id, "csrf_token": token})
    assert (Citizen.get_or_none(Citizen.id == citizen.id) is None) is allowed

    other = world["bare"]["foreign" if where == "own" else "own"]
    client.post("/admin/citizen/action/", data={"action": "delete", "rowid": [other.id], "csrf_token": token})
    other_allowed = role in CAN_DELETE_CITIZEN and expected_visible(role, "foreign" if where == "own" else "own")
    assert (Citizen.get_or_none(Citizen.id == other.id) is None) is other_allowed


@pytest.mark.parametrize("role", ROLES)
def test_ajax_lookups_offer_only_citizens_in_scope(app, world, role):
    client = signed_in(app, role)
    response = client.get("/admin/encounter/ajax/lookup/", query_string={"name": "citizen", "query": ""})
    assert response.status_code == 200
    names = {label for _, label in json.loads(response.text)}
    assert any("Trần Thị Nội" in n for n in names)
    assert any("Lê Văn Ngoại" in n for n in names) is (role in SEES_FOREIGN)
    household = client.get("/admin/citizen/ajax/lookup/", query_string={"name": "household", "query": "HK"})
    assert ("HK-FAR" in household.text) is (role in SEES_FOREIGN)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "foreign"])
@pytest.mark.parametrize("view", ["encounter", "household"])
def test_record_parts_and_households_follow_the_citizens_scope(app, world, role, where, view):
    client = signed_in(app, role)
    row = world["encounters" if view == "encounter" else "households"][where]
    marker = row.diagnosis if view == "encounter" else row.book_number
    visible = expected_visible(role, where)
    assert (marker in client.get(f"/admin/{view}/").text) is visible
    details = client.get(f"/admin/{view}/details/?id={row.id}")
    assert (marker in details.text) is visible
    edit = client.get(f"/admin/{view}/edit/?id={row.id}")
    assert (marker in edit.text) is (visible and role in CAN_EDIT)


@pytest.mark.parametrize("role", ROLES)
def test_an_encounter_cannot_be_attached_to_a_foreign_citizen(app, world, role):
    client = signed_in(app, role)
    token = admin_token(client, "/admin/encounter/new/") if role in CAN_EDIT else "x"
    foreign = world["citizens"]["foreign"]
    client.post(
        "/admin/encounter/new/",
        data={
            "csrf_token": token,
            "citizen": foreign.id,
            "date": "01/02/2025",
            "facility_name": "Trạm",
            "diagnosis": "Cúm mùa",
        },
    )
    created = Encounter.select().where(Encounter.diagnosis == "Cúm mùa").exists()
    assert created is (role in SEES_FOREIGN and role in CAN_EDIT)


@pytest.mark.parametrize("role", ROLES)
def test_staff_and_audit_pages_are_for_administrators_and_leaders(app, world, role):
    client = signed_in(app, role)
    for url in ["/admin/staff/", "/admin/audit/"]:
        response = client.get(url)
        assert (response.status_code == 200) is (role in {"admin", "leader"}), url
    staff_edit = client.get(f"/admin/staff/edit/?id={world['accounts']['clerk'].id}")
    assert (staff_edit.status_code == 200 and "clerk" in staff_edit.text) is (role == "admin")


@pytest.mark.parametrize("role", ROLES)
def test_only_the_system_administrator_changes_units(app, world, role):
    client = signed_in(app, role)
    assert client.get("/admin/health_unit/").status_code == 200
    unit = world["far_station"]
    response = client.get(f"/admin/health_unit/edit/?id={unit.id}")
    assert (response.status_code == 200 and unit.code in response.text) is (role == "admin")


def test_a_leader_reads_everything_and_changes_nothing(app, world):
    client = signed_in(app, "leader")
    assert client.get("/admin/citizen/new/").status_code == 302
    listing = client.get("/admin/citizen/").text
    assert "/admin/citizen/edit/" not in listing
    assert "/admin/citizen/new/" not in listing


def test_admin_forms_refuse_a_missing_csrf_token(app, world):
    client = signed_in(app, "station")
    own = world["citizens"]["own"]
    client.post(
        f"/admin/citizen/edit/?id={own.id}",
        data={"full_name": "Không Token", "ward": str(own.ward_id), "health_code": own.health_code},
    )
    assert Citizen.get_by_id(own.id).full_name == own.full_name
    page = client.get(f"/admin/citizen/edit/?id={own.id}")
    assert csrf_from(page.text)
