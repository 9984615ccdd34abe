"""The feed in the back office: API keys, the unmatched queue (scoped) and the CSV upload."""

import io
import json

import pytest

from models.accounts import Role
from models.api import ApiKey
from models.api import UnmatchedEncounter
from models.audit import AuditEvent
from models.records import Encounter
from models.units import UnitKind
from services import api_keys
from services import clock
from services.encounter_feed import encounter_from_queue
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import csrf_from
from tests.helpers import sign_in

CSV_HEADER = "visit_id,health_code,national_id,date,icd10_code,diagnosis,summary,full_name,date_of_birth,ward_code\n"


@pytest.fixture
def world(app):
    home, other, far = wards_of(n=3)
    department = make_unit(UnitKind.DEPARTMENT, code="SYT")
    hospital = make_unit(UnitKind.HOSPITAL, code="BVDK", parent=department)
    station = make_unit(UnitKind.COMMUNE_STATION, code="TYT1", wards=[home], parent=department)
    neighbour = make_unit(UnitKind.COMMUNE_STATION, code="TYT2", wards=[other], parent=department)
    cdc = make_unit(UnitKind.CDC, code="CDC", wards=[far], parent=department)
    accounts = {
        "admin": make_staff(department, role=Role.SYSTEM_ADMIN, username="admin"),
        "leader": make_staff(department, role=Role.DEPARTMENT_LEADER, username="leader"),
        "owner": make_staff(station, role=Role.UNIT_STAFF, username="owner"),
        "colleague": make_staff(station, role=Role.DATA_CLERK, username="colleague"),
        "outsider": make_staff(neighbour, role=Role.UNIT_STAFF, username="outsider"),
        "cdc": make_staff(cdc, role=Role.CDC_STAFF, username="cdc"),
        "clerk": make_staff(hospital, role=Role.DATA_CLERK, username="clerk"),
    }
    resident = make_citizen(home, full_name="Trần Thị Nội")
    stranger = make_citizen(other, full_name="Lê Văn Ngoại")
    return {
        "wards": (home, other, far),
        "hospital": hospital,
        "station": station,
        "accounts": accounts,
        "resident": resident,
        "stranger": stranger,
    }


def client_of(app, world, who):
    client = app.test_client()
    assert sign_in(client, world["accounts"][who].username).status_code == 302
    return client


def queue(world, visit_id, ward_code):
    item = {"visit_id": visit_id, "patient": {"national_id": "001190009999"}, "date": "2025-02-03", "diagnosis": "Sốt"}
    return UnmatchedEncounter.create(
        facility=world["hospital"], visit_id=visit_id, payload=json.dumps(item), ward_code=ward_code
    )


# API keys


def test_an_administrator_issues_a_key_shown_once_and_revokes_it(app, world):
    client = client_of(app, world, "admin")
    token = admin_token(client, "/admin/api_key/new/")

    page = client.post(
        "/admin/api_key/new/", data={"facility": world["hospital"].id, "name": "HIS", "csrf_token": token}
    )

    assert page.status_code == 200
    api_key = ApiKey.get()
    secret = page.text.split('id="api-key-secret">', 1)[1].split("<", 1)[0]
    assert api_keys.authenticate(type("R", (), {"headers": {"Authorization": f"Bearer {secret}"}})).id == api_key.id
    listing = client.get("/admin/api_key/").text
    assert api_key.prefix in listing and secret not in listing

    token = admin_token(client, "/admin/api_key/")
    client.post("/admin/api_key/action/", data={"action": "revoke", "rowid": [api_key.id], "csrf_token": token})

    assert ApiKey.get_by_id(api_key.id).revoked_at is not None
    assert AuditEvent.select().where(AuditEvent.object_type == "api_key").count() == 2


def test_a_key_is_only_for_a_hospital_or_health_centre(app, world):
    client = client_of(app, world, "admin")
    token = admin_token(client, "/admin/api_key/new/")
    department = world["accounts"]["admin"].unit

    client.post("/admin/api_key/new/", data={"facility": department.id, "name": "x", "csrf_token": token})

    assert ApiKey.select().count() == 0


@pytest.mark.parametrize(("who", "status"), [("leader", 200), ("owner", 403), ("cdc", 403)])
def test_only_administrators_and_leaders_see_the_keys(app, world, who, status):
    client = client_of(app, world, who)

    assert client.get("/admin/api_key/").status_code == status
    assert client.get("/admin/api_key/new/").status_code in (302, 403)
    assert ApiKey.select().count() == 0


# The unmatched queue


@pytest.mark.parametrize(
    ("who", "sees_home", "sees_unknown_commune"),
    [
        ("owner", True, False),
        ("colleague", True, False),
        ("outsider", False, False),
        ("cdc", False, True),
        ("leader", True, True),
        ("admin", True, True),
    ],
)
def test_the_queue_is_scoped_by_the_patients_commune(app, world, who, sees_home, sees_unknown_commune):
    home_row = queue(world, "HOME-1", world["wards"][0])
    nowhere = queue(world, "NOWHERE-1", None)
    client = client_of(app, world, who)

    listing = client.get("/admin/unmatched_encounter/").text

    assert ("HOME-1" in listing) is sees_home
    assert ("NOWHERE-1" in listing) is sees_unknown_commune
    details = client.get(f"/admin/unmatched_encounter/details/?id={home_row.id}")
    assert (details.status_code == 200 and "HOME-1" in details.text) is sees_home
    details = client.get(f"/admin/unmatched_encounter/details/?id={nowhere.id}")
    assert (details.status_code == 200 and "NOWHERE-1" in details.text) is sees_unknown_commune


def test_the_owner_resolves_a_queued_visit_to_a_citizen_in_scope(app, world):
    row = queue(world, "HOME-1", world["wards"][0])
    client = client_of(app, world, "owner")
    url = f"/admin/unmatched_encounter/edit/?id={row.id}"
    lookup = client.get(
        "/admin/unmatched_encounter/ajax/lookup/", query_string={"name": "resolved_citizen", "query": ""}
    )
    names = {label for _, label in json.loads(lookup.text)}
    assert any("Trần Thị Nội" in n for n in names)
    assert not any("Lê Văn Ngoại" in n for n in names)

    # A citizen outside the owner's communes is refused even when posted by id.
    client.post(url, data={"resolved_citizen": world["stranger"].id, "csrf_token": admin_token(client, url)})
    assert Encounter.select().count() == 0
    client.post(url, data={"resolved_citizen": world["resident"].id, "csrf_token": admin_token(client, url)})

    encounter = Encounter.get()
    assert (encounter.citizen_id, encounter.visit_id, encounter.diagnosis) == (world["resident"].id, "HOME-1", "Sốt")
    row = UnmatchedEncounter.get_by_id(row.id)
    assert row.resolved_citizen_id == world["resident"].id
    assert row.resolved_by_id == world["accounts"]["owner"].id
    event = AuditEvent.get(AuditEvent.object_type == "unmatched_encounter")
    assert event.citizen_id == world["resident"].id


def test_a_resend_after_resolution_updates_the_resolved_citizens_encounter(app, world, client):
    api_key, secret = api_keys.issue(world["hospital"], "HIS", by=world["accounts"]["admin"])
    item = {
        "visit_id": "Q1",
        "patient": {"national_id": "001190009999", "ward_code": world["wards"][0]},
        "date": "2025-02-03",
    }
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/api/v1/encounters", json=item, headers=headers).get_json()["queued"] == 1
    row = UnmatchedEncounter.get()
    encounter_from_queue(row, world["resident"], by=world["accounts"]["owner"], now=clock.now())

    response = client.post("/api/v1/encounters", json={**item, "diagnosis": "Cúm"}, headers=headers)

    assert response.get_json() == {"created": 0, "updated": 1, "unchanged": 0, "queued": 0}
    assert Encounter.get().diagnosis == "Cúm"
    assert Encounter.get().citizen_id == world["resident"].id


# The CSV upload


def upload(client, text, filename="visits.csv"):
    token = csrf_from(client.get("/admin/encounters/upload/").text)
    data = {"file": (io.BytesIO(text.encode("utf-8")), filename), "csrf_token": token}
    return client.post("/admin/encounters/upload/", data=data, content_type="multipart/form-data")


def test_a_hospital_clerk_uploads_the_days_visits_as_csv(app, world):
    client = client_of(app, world, "clerk")
    code = world["resident"].health_code
    text = (
        CSV_HEADER
        + f"V1,{code},,03/02/2025,J45.9,Hen,,,,\nV2,,001190009999,2025-02-04,,Sốt,,Nguyễn C,01/01/1990,{world['wards'][0]}\n"
    )

    response = upload(client, text)

    assert response.status_code == 200
    assert 'id="feed-result"' in response.text
    assert Encounter.get().facility_id == world["hospital"].id
    assert UnmatchedEncounter.get().visit_id == "V2"
    assert upload(client, text).status_code == 200
    assert Encounter.select().count() == 1
    event = AuditEvent.select().where(AuditEvent.object_type == "encounter_feed").order_by(AuditEvent.id.desc()).get()
    assert (event.actor, event.details["source"], event.details["unchanged"]) == ("clerk", "csv", 1)


def test_a_csv_with_errors_names_row_and_column_and_writes_nothing(app, world):
    client = client_of(app, world, "clerk")
    code = world["resident"].health_code
    text = CSV_HEADER + f"V1,{code},,03/02/2025,,,,,,\nV2,{code},,31/02/2025,,,,,,\nV3,,,03/02/2025,XYZ,,,,,\n"

    response = upload(client, text)

    assert response.status_code == 422
    rows = [
        [cell.strip() for cell in line.split("</td><td>")]
        for line in response.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr><td>")[1:]
    ]
    assert [(r[0], r[1]) for r in rows] == [("3", "date"), ("4", "icd10_code"), ("4", "health_code")]
    assert Encounter.select().count() == 0


def test_a_csv_with_a_wrong_header_is_refused(app, world):
    client = client_of(app, world, "clerk")

    response = upload(client, "visit,code\nV1,123\n")

    assert response.status_code == 422
    assert Encounter.select().count() == 0


@pytest.mark.parametrize("who", ["owner", "leader"])
def test_only_staff_of_a_hospital_or_health_centre_upload_encounters(app, world, who):
    client = client_of(app, world, who)

    assert client.get("/admin/encounters/upload/").status_code == 403
    assert client.post("/admin/encounters/upload/", data={}).status_code == 403


@pytest.mark.parametrize("page", ["/admin/api_key/", "/admin/unmatched_encounter/"])
def test_the_lists_make_no_query_per_row(app, world, page):
    from playhouse.test_utils import count_queries

    client = client_of(app, world, "admin")
    admin = world["accounts"]["admin"]

    def add(n, start):
        for i in range(start, start + n):
            api_keys.issue(world["hospital"], f"k{i}", by=admin)
            row = queue(world, f"Q{i}", world["wards"][0])
            encounter_from_queue(row, world["resident"], by=admin, now=clock.now())

    add(1, 0)
    with count_queries() as few:
        assert client.get(page).status_code == 200
    add(5, 1)
    with count_queries() as many:
        assert client.get(page).status_code == 200

    assert many.count == few.count
