"""POST /api/v1/encounters: keys, refusals as JSON (never a 500), validation paths, idempotency, the queue."""

import datetime
import json

import pytest

from models.accounts import Role
from models.api import UnmatchedEncounter
from models.audit import AuditEvent
from models.records import Encounter
from models.units import UnitKind
from services import api_keys
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of

URL = "/api/v1/encounters"


@pytest.fixture
def world(app):
    wards = wards_of(n=4)
    hospital = make_unit(UnitKind.HOSPITAL, code="BVDK", wards=())
    admin = make_staff(hospital, role=Role.SYSTEM_ADMIN)
    api_key, secret = api_keys.issue(hospital, "HIS", by=admin)
    citizen = make_citizen(wards[0], national_id="001090001234", date_of_birth=datetime.date(1990, 5, 1))
    return {"wards": wards, "hospital": hospital, "admin": admin, "key": api_key, "secret": secret, "citizen": citizen}


def post(client, world, body, headers=None, **kwargs):
    headers = {"Authorization": f"Bearer {world['secret']}", **(headers or {})}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, headers=headers, content_type=kwargs.pop("content_type", "application/json"))


def visit(visit_id="V1", **fields):
    item = {"visit_id": visit_id, "patient": {"health_code": fields.pop("health_code", None)}, "date": "2025-03-04"}
    item.update(fields)
    return item


def assert_json_refusal(response, status):
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    assert "Set-Cookie" not in response.headers
    return response.get_json()


def test_a_missing_unknown_or_revoked_key_gets_401_with_www_authenticate(client, world):
    body = visit(health_code=world["citizen"].health_code)
    missing = client.post(URL, json=body)
    unknown = post(client, world, body, headers={"Authorization": "Bearer not-a-key"})
    api_keys.revoke(world["key"], by=world["admin"])
    revoked = post(client, world, body)

    for response in (missing, unknown, revoked):
        assert assert_json_refusal(response, 401)["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert Encounter.select().count() == 0


def test_malformed_json_gets_400(client, world):
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b"[" * 100_000):
        assert assert_json_refusal(post(client, world, body), 400)["error"] == "malformed_json"


def test_a_body_over_one_megabyte_gets_413(client, world):
    big = json.dumps({"encounters": [visit(f"V{i}", summary="x" * 9000) for i in range(120)]})
    assert len(big) > 1024 * 1024

    assert assert_json_refusal(post(client, world, big), 413)["error"] == "too_large"
    assert Encounter.select().count() == 0


def test_a_body_that_is_not_json_gets_415(client, world):
    response = post(client, world, "visit_id=V1", content_type="application/x-www-form-urlencoded")

    assert assert_json_refusal(response, 415)["error"] == "unsupported_media_type"


def test_one_encounter_of_a_known_citizen_is_created_and_audited(client, world):
    citizen = world["citizen"]
    body = visit(health_code=citizen.health_code, icd10_code="j45.9", diagnosis="Hen phế quản")

    response = post(client, world, body)

    assert response.status_code == 200, response.text
    assert "Set-Cookie" not in response.headers
    assert response.get_json() == {"created": 1, "updated": 0, "unchanged": 0, "queued": 0}
    encounter = Encounter.get()
    assert (encounter.citizen_id, encounter.facility_id, encounter.visit_id) == (citizen.id, world["hospital"].id, "V1")
    assert (encounter.icd10_code, encounter.date) == ("J45.9", datetime.date(2025, 3, 4))
    event = AuditEvent.get(AuditEvent.object_type == "encounter_feed")
    assert (event.actor, event.unit_code) == ("api:BVDK", "BVDK")
    assert event.details["citizen_ids"] == [citizen.id]
    assert event.details["created"] == 1


def test_validation_errors_name_the_path_and_nothing_is_written(client, world):
    citizen = world["citizen"]
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    items = [
        visit("OK", health_code=citizen.health_code),
        {"patient": {"health_code": citizen.health_code}, "date": "2025-01-01"},
        visit("BAD-DATE", health_code=citizen.health_code, date=tomorrow),
        visit("BAD-ICD", health_code=citizen.health_code, icd10_code="hello"),
        visit("NO-PATIENT", patient={}),
        visit("BAD-ID", patient={"national_id": "12345"}),
        visit("x" * 65, health_code=citizen.health_code),
        "not an object",
    ]

    response = post(client, world, {"encounters": items})

    errors = assert_json_refusal(response, 422)["errors"]
    paths = [e["path"] for e in errors]
    assert paths == [
        "encounters[1].visit_id",
        "encounters[2].date",
        "encounters[3].icd10_code",
        "encounters[4].patient.health_code",
        "encounters[5].patient.national_id",
        "encounters[6].visit_id",
        "encounters[7]",
    ]
    # Reasons come in Vietnamese.
    assert "tương lai" in errors[1]["reason"]
    assert errors[0]["reason"] == "Vui lòng nhập mã lượt khám của cơ sở."
    assert Encounter.select().count() == 0
    assert UnmatchedEncounter.select().count() == 0


def test_more_than_a_thousand_encounters_are_refused(client, world):
    items = [visit(f"V{i}", health_code=world["citizen"].health_code) for i in range(1001)]

    errors = assert_json_refusal(post(client, world, {"encounters": items}), 422)["errors"]

    assert errors[0]["path"] == "encounters"


def test_a_resend_updates_changed_visits_and_never_duplicates(client, world):
    code = world["citizen"].health_code
    first = [visit("V1", health_code=code), visit("V2", health_code=code, diagnosis="Cúm")]
    assert post(client, world, {"encounters": first}).get_json()["created"] == 2

    again = [visit("V1", health_code=code), visit("V2", health_code=code, diagnosis="Viêm phổi")]
    response = post(client, world, {"encounters": again})

    assert response.get_json() == {"created": 0, "updated": 1, "unchanged": 1, "queued": 0}
    assert Encounter.select().count() == 2
    assert Encounter.get(Encounter.visit_id == "V2").diagnosis == "Viêm phổi"


def test_the_patient_is_found_by_national_id_when_the_health_code_is_unknown(client, world):
    item = visit(patient={"health_code": "UNKNOWN-1", "national_id": "001090001234"})

    assert post(client, world, item).get_json()["created"] == 1
    assert Encounter.get().citizen_id == world["citizen"].id


def test_an_unknown_patient_is_queued_and_a_resend_updates_the_queued_row(client, world):
    ward = world["wards"][1]
    item = visit("Q1", patient={"national_id": "001190009999", "full_name": "Trần Thị B", "ward_code": ward})

    assert post(client, world, item).get_json() == {"created": 0, "updated": 0, "unchanged": 0, "queued": 1}
    item["diagnosis"] = "Sốt"
    assert post(client, world, item).get_json()["queued"] == 1

    row = UnmatchedEncounter.get()
    assert UnmatchedEncounter.select().count() == 1
    assert (row.ward_code, row.item["diagnosis"], row.resolved_at) == (ward, "Sốt", None)
    assert Encounter.select().count() == 0


def test_an_unknown_commune_is_a_validation_error(client, world):
    item = visit(patient={"national_id": "001190009999", "ward_code": 99999999})

    errors = assert_json_refusal(post(client, world, item), 422)["errors"]

    assert errors == [{"path": "patient.ward_code", "reason": errors[0]["reason"]}]


def test_a_failure_while_writing_leaves_nothing_behind(client, world, monkeypatch):
    code = world["citizen"].health_code
    items = [visit("V1", health_code=code), visit("Q1", patient={"national_id": "001190009999"})]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("models.audit.AuditEvent.record", broken)
    with pytest.raises(RuntimeError):
        post(client, world, {"encounters": items})

    assert Encounter.select().count() == 0
    assert UnmatchedEncounter.select().count() == 0


def test_a_batch_costs_the_same_queries_whatever_its_size(app, world):
    from playhouse.test_utils import count_queries

    from services import encounter_feed

    citizen = world["citizen"]

    def items(n, prefix):
        known = [visit(f"{prefix}{i}", health_code=citizen.health_code) for i in range(n)]
        by_id = [visit(f"{prefix}N{i}", patient={"national_id": "001090001234"}) for i in range(n)]
        unknown = [
            visit(f"{prefix}U{i}", patient={"national_id": "001190009999", "ward_code": world["wards"][0]})
            for i in range(n)
        ]
        return known + by_id + unknown

    now = datetime.datetime(2025, 6, 1)
    with count_queries() as small:
        encounter_feed.ingest(world["hospital"], items(2, "S"), now)
    with count_queries() as large:
        result = encounter_feed.ingest(world["hospital"], items(200, "L"), now)

    assert result.counts() == {"created": 400, "updated": 0, "unchanged": 0, "queued": 200}
    assert large.count == small.count


def test_values_no_column_can_hold_are_validation_errors_not_server_errors(client, world):
    code = world["citizen"].health_code
    items = [
        visit("NUL\u0000", health_code=code),
        visit("V2", health_code=code, diagnosis="\ud800"),
        visit("V3", patient={"national_id": "001190009999", "ward_code": 10**30}),
        visit(12345, health_code=code),
        visit("V5", patient={"national_id": "001190009999", "ward_code": "²"}),
    ]
    body = json.dumps({"encounters": items})  # ensure_ascii: the NUL and the lone surrogate travel as escapes

    errors = assert_json_refusal(post(client, world, body), 422)["errors"]

    assert [e["path"] for e in errors] == [
        "encounters[0].visit_id",
        "encounters[1].diagnosis",
        "encounters[2].patient.ward_code",
        "encounters[3].visit_id",
        "encounters[4].patient.ward_code",
    ]


def test_a_queued_visit_keeps_only_the_checked_fields(client, world):
    item = visit("Q1", patient={"national_id": "001190009999", "full_name": " Trần B ", "mother": "x"}, extra="y")

    assert post(client, world, item).get_json()["queued"] == 1

    assert UnmatchedEncounter.get().item == {
        "visit_id": "Q1",
        "date": "2025-03-04",
        "icd10_code": None,
        "diagnosis": None,
        "summary": None,
        "patient": {
            "health_code": None,
            "national_id": "001190009999",
            "full_name": "Trần B",
            "date_of_birth": None,
            "ward_code": None,
        },
    }


def test_a_merged_records_old_health_code_or_id_number_reaches_the_survivor(client, world):
    from services import duplicates

    survivor = world["citizen"]
    merged = make_citizen(world["wards"][0], national_id="001090009999", date_of_birth=datetime.date(1990, 5, 1))
    old_code = merged.health_code
    duplicates.merge(survivor, merged, duplicates.default_choices(survivor, merged), by=world["admin"])
    items = [visit("A1", health_code=old_code), visit("A2", patient={"national_id": "001090009999"})]

    response = post(client, world, {"encounters": items})

    assert response.get_json() == {"created": 2, "updated": 0, "unchanged": 0, "queued": 0}
    assert {e.citizen_id for e in Encounter.select()} == {survivor.id}
    assert UnmatchedEncounter.select().count() == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", URL, 405, "method_not_allowed"),
        ("DELETE", URL, 405, "method_not_allowed"),
        ("POST", "/api/v1/openapi.json", 405, "method_not_allowed"),
        ("GET", "/api/v1/patients", 404, "not_found"),
        ("GET", "/api/v2/encounters", 404, "not_found"),
    ],
)
def test_an_unknown_path_or_method_under_api_is_answered_in_json(client, world, method, path, status, error):
    response = client.open(path, method=method, headers={"Authorization": f"Bearer {world['secret']}"})

    body = assert_json_refusal(response, status)
    assert body["error"] == error
    assert body["message"]
    if status == 405:
        assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]


def test_the_rest_of_the_portal_keeps_its_html_error_pages(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
