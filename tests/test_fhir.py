"""FHIR R4 out: GET /api/v1/fhir/Patient/<health_code>/$everything."""

import datetime

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from playhouse.test_utils import count_queries
from pydantic import ValidationError

from models.accounts import Role
from models.audit import AuditEvent
from models.duplicates import CitizenAlias
from models.places import Ward
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.units import HealthUnit
from models.units import UnitKind
from services import api_keys
from services import fhir
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import sign_in

# fhir.resources 8.x has no R4 (4.0.1) package: its top level is R5, and R4B (4.3.0) is the nearest.
# R4B is a technical correction of R4 that leaves Bundle, Patient, Encounter, Immunization, Condition,
# AllergyIntolerance and OperationOutcome as R4 defines them (Encounter.class still one Coding,
# Immunization.protocolApplied, …), so the R4B models check exactly the R4 shape we send.


def url(health_code):
    return f"/api/v1/fhir/Patient/{health_code}/$everything"


# fhir.resources checks types, cardinality and formats but not required value sets (a "code" is any
# token): the codes we send are checked against R4's value sets here.
VALUE_SETS = {
    ("Bundle", "type"): {"searchset", "collection"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
    ("Encounter", "status"): {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled"},
    ("Immunization", "status"): {"completed", "entered-in-error", "not-done"},
    ("AllergyIntolerance", "criticality"): {"low", "high", "unable-to-assess"},
}
IDENTIFIER_USES = {"usual", "official", "temp", "secondary", "old"}


def validate(document):
    """Validate a bundle as a whole and each of its resources with the fhir.resources models."""
    if document["resourceType"] == "Bundle":
        Bundle.model_validate(document)
        for entry in document["entry"]:
            assert entry["search"]["mode"] in {"match", "include"}
            validate(entry["resource"])
        return document
    get_fhir_model_class(document["resourceType"]).model_validate(document)
    for (resource_type, field), codes in VALUE_SETS.items():
        if document["resourceType"] == resource_type and field in document:
            assert document[field] in codes, f"{resource_type}.{field} = {document[field]!r}"
    for identifier in document.get("identifier", []):
        assert identifier["use"] in IDENTIFIER_USES
    for reaction in document.get("reaction", []):
        assert reaction.get("severity", "mild") in {"mild", "moderate", "severe"}
    return document


def resources_of(bundle, resource_type):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


@pytest.fixture
def world(app):
    """Two communes, a station for each, a hospital, a leader; one citizen in the first commune."""
    home, elsewhere = wards_of(n=2)
    department = make_unit(UnitKind.DEPARTMENT, wards=[home, elsewhere], code="SYT22")
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[home], parent=department, code="TYT1")
    other_station = make_unit(UnitKind.COMMUNE_STATION, wards=[elsewhere], parent=department, code="TYT2")
    hospital = make_unit(UnitKind.HOSPITAL, parent=department, code="BVDK", name="Bệnh viện Đa khoa tỉnh")
    make_staff(station, Role.UNIT_STAFF, username="home")
    make_staff(other_station, Role.UNIT_STAFF, username="outsider")
    make_staff(department, Role.DEPARTMENT_LEADER, username="leader")
    citizen = make_citizen(
        home,
        full_name="Nguyễn Thị Minh Khai",
        date_of_birth=datetime.date(1985, 3, 4),
        gender="F",
        phone="0912345678",
        national_id="022185001234",
        old_national_id="123456789",
        insurance_number="GD4221234567890",
        permanent_address="12 Lê Lợi",
    )
    return {
        "home": home,
        "elsewhere": elsewhere,
        "station": station,
        "hospital": hospital,
        "citizen": citizen,
    }


def add_full_record(citizen, hospital, station):
    Encounter.create(
        citizen=citizen,
        facility=hospital,
        visit_id="V-001",
        date=datetime.date(2025, 2, 1),
        icd10_code="J45.9",
        diagnosis="Hen phế quản",
    )
    Encounter.create(citizen=citizen, facility_name="Phòng khám tư Hạnh Phúc", date=datetime.date(2025, 3, 1))
    mr = Vaccine.create(code="MR", name="Sởi-Rubella", disease="Sởi", doses_in_schedule=2)
    Vaccination.create(
        citizen=citizen, vaccine=mr, dose_number=1, date=datetime.date(2024, 1, 5), site=station, lot="L123"
    )
    Vaccination.create(citizen=citizen, vaccine=mr, dose_number=2, date=datetime.date(2024, 6, 5))
    Condition.create(citizen=citizen, name="Tăng huyết áp", icd10_code="I10", since=datetime.date(2020, 5, 1))
    Allergy.create(citizen=citizen, substance="Penicillin", reaction="Nổi mề đay", severity="severe")


def read_as(client, username, health_code):
    sign_in(client, username)
    return client.get(url(health_code))


def test_a_full_record_is_a_valid_r4_bundle(client, world):
    citizen = world["citizen"]
    add_full_record(citizen, world["hospital"], world["station"])

    response = read_as(client, "home", citizen.health_code)

    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Cache-Control"] == "no-store"
    bundle = validate(response.get_json(force=True))
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 1
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Patient"] + ["Encounter"] * 2 + ["Immunization"] * 2 + ["Condition", "AllergyIntolerance"]
    assert [e["search"]["mode"] for e in bundle["entry"]] == ["match"] + ["include"] * 6


def test_every_resource_has_a_stable_id_and_every_reference_resolves(client, world):
    citizen = world["citizen"]
    add_full_record(citizen, world["hospital"], world["station"])
    sign_in(client, "home")

    first = client.get(url(citizen.health_code)).get_json(force=True)
    second = client.get(url(citizen.health_code)).get_json(force=True)

    ids = [e["resource"]["id"] for e in first["entry"]]
    assert ids == [e["resource"]["id"] for e in second["entry"]]
    assert len(set(ids)) == len(ids)
    assert ids[0] == f"pat-{citizen.id}"
    encounter_ids = [f"enc-{e.id}" for e in Encounter.select().order_by(Encounter.id)]
    assert ids[1:3] == encounter_ids
    full_urls = {e["fullUrl"] for e in first["entry"]}
    for entry in first["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"http://localhost/api/v1/fhir/{resource['resourceType']}/{resource['id']}"
        for field in ("subject", "patient"):
            if field in resource:
                assert resource[field] == {"reference": f"Patient/pat-{citizen.id}"}
                assert f"http://localhost/api/v1/fhir/{resource[field]['reference']}" in full_urls


def test_the_patient_carries_vietnamese_identifiers_name_and_address(client, world):
    citizen = world["citizen"]
    ward = Ward.get_by_id(world["home"])

    bundle = validate(read_as(client, "home", citizen.health_code).get_json(force=True))

    [patient] = resources_of(bundle, "Patient")
    assert patient["identifier"] == [
        {"use": "usual", "system": "https://moh.gov.vn/fhir/sid/ma-y-te-ca-nhan", "value": citizen.health_code},
        {"use": "official", "system": "https://moh.gov.vn/fhir/sid/cccd", "value": "022185001234"},
        {"use": "old", "system": "https://moh.gov.vn/fhir/sid/cmnd", "value": "123456789"},
        {"use": "official", "system": "https://moh.gov.vn/fhir/sid/bhyt", "value": "GD4221234567890"},
    ]
    assert patient["name"] == [
        {"use": "official", "text": "Nguyễn Thị Minh Khai", "family": "Nguyễn", "given": ["Thị", "Minh", "Khai"]}
    ]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1985-03-04"
    assert patient["telecom"] == [{"system": "phone", "value": "0912345678", "use": "mobile"}]
    [address] = patient["address"]
    assert address["line"] == ["12 Lê Lợi"]
    assert address["city"] == ward.name
    assert address["state"] == ward.province.name
    assert address["country"] == "VN"
    assert address["text"] == f"12 Lê Lợi, {ward.name}, {ward.province.name}"
    assert {"url": fhir.EXT_WARD_CODE, "valueCode": f"{ward.code:05d}"} in address["extension"]
    assert {"url": fhir.EXT_PROVINCE_CODE, "valueCode": "22"} in address["extension"]


def test_a_nine_digit_id_number_is_a_cmnd(client, world):
    citizen = make_citizen(world["home"], full_name="Trần An", gender="M", national_id="031234567")

    bundle = validate(read_as(client, "home", citizen.health_code).get_json(force=True))

    [patient] = resources_of(bundle, "Patient")
    assert {"use": "official", "system": fhir.SYSTEM_CMND, "value": "031234567"} in patient["identifier"]
    assert not [i for i in patient["identifier"] if i["system"] == fhir.SYSTEM_CCCD]
    assert patient["gender"] == "male"
    assert patient["name"][0]["family"] == "Trần" and patient["name"][0]["given"] == ["An"]


def test_the_record_parts_say_what_the_portal_knows(client, world):
    citizen = world["citizen"]
    add_full_record(citizen, world["hospital"], world["station"])

    bundle = validate(read_as(client, "home", citizen.health_code).get_json(force=True))

    at_hospital, at_clinic = resources_of(bundle, "Encounter")
    assert at_hospital["status"] == "finished"
    assert at_hospital["class"]["code"] == "AMB"
    assert at_hospital["period"] == {"start": "2025-02-01", "end": "2025-02-01"}
    assert at_hospital["serviceProvider"]["display"] == "Bệnh viện Đa khoa tỉnh"
    assert at_hospital["serviceProvider"]["identifier"]["value"] == "BVDK"
    assert at_hospital["reasonCode"] == [
        {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45.9"}], "text": "Hen phế quản"}
    ]
    assert at_hospital["identifier"][0]["value"] == "V-001"
    assert at_clinic["serviceProvider"] == {"display": "Phòng khám tư Hạnh Phúc"}
    assert "reasonCode" not in at_clinic

    first, second = resources_of(bundle, "Immunization")
    assert first["status"] == "completed"
    assert first["vaccineCode"]["coding"] == [{"system": fhir.SYSTEM_VACCINE, "code": "MR", "display": "Sởi-Rubella"}]
    assert first["vaccineCode"]["text"] == "Sởi-Rubella"
    assert first["occurrenceDateTime"] == "2024-01-05"
    assert first["protocolApplied"][0]["doseNumberPositiveInt"] == 1
    assert first["protocolApplied"][0]["seriesDosesPositiveInt"] == 2
    assert first["lotNumber"] == "L123"
    assert first["location"]["display"] == world["station"].name
    assert first["performer"] == [{"actor": first["location"]}]
    assert second["protocolApplied"][0]["doseNumberPositiveInt"] == 2
    assert "lotNumber" not in second and "location" not in second and "performer" not in second

    [condition] = resources_of(bundle, "Condition")
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["code"] == {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
        "text": "Tăng huyết áp",
    }
    assert condition["onsetDateTime"] == "2020-05-01"

    [allergy] = resources_of(bundle, "AllergyIntolerance")
    assert allergy["code"] == {"text": "Penicillin"}
    assert allergy["criticality"] == "high"
    assert allergy["reaction"] == [{"manifestation": [{"text": "Nổi mề đay"}], "severity": "severe"}]


def test_an_empty_record_is_a_bundle_with_the_patient_alone(client, world):
    citizen = make_citizen(world["home"], full_name="Lê")

    bundle = validate(read_as(client, "home", citizen.health_code).get_json(force=True))

    [entry] = bundle["entry"]
    patient = entry["resource"]
    assert patient["gender"] == "unknown"
    assert patient["name"] == [{"use": "official", "text": "Lê", "family": "Lê"}]
    assert [i["system"] for i in patient["identifier"]] == [fhir.SYSTEM_HEALTH_CODE]
    assert "birthDate" not in patient and "telecom" not in patient
    assert "line" not in patient["address"][0]


def test_the_validator_rejects_a_broken_resource(world):
    """The checks above can fail: a resource with a wrong shape does not pass the models."""
    patient = fhir.patient(world["citizen"])
    with pytest.raises(ValidationError):
        validate({**patient, "birthDate": "04/03/1985"})
    with pytest.raises(AssertionError):
        validate({**patient, "gender": "nam"})
    encounter = {"resourceType": "Encounter", "id": "enc-1", "status": "finished", "class": [{"code": "AMB"}]}
    with pytest.raises(ValidationError):
        validate(encounter)


def test_the_bundle_takes_one_query_per_resource_type(app, client, world):
    citizen = world["citizen"]
    sign_in(client, "leader")
    add_full_record(citizen, world["hospital"], world["station"])
    client.get(url(citizen.health_code))
    with count_queries() as few:
        assert client.get(url(citizen.health_code)).status_code == 200
    flu = Vaccine.create(code="FLU", name="Cúm", disease="Cúm", doses_in_schedule=3)
    other_site = make_unit(UnitKind.VACCINATION_SITE, code="DTC2")
    for n in range(1, 4):
        Encounter.create(citizen=citizen, facility=other_site, visit_id=f"X{n}", date=datetime.date(2024, 1, n))
        Vaccination.create(citizen=citizen, vaccine=flu, dose_number=n, date=datetime.date(2024, 2, n), site=other_site)
        Condition.create(citizen=citizen, name=f"Bệnh {n}", icd10_code="A09")
        Allergy.create(citizen=citizen, substance=f"Chất {n}")
    with count_queries() as many:
        response = client.get(url(citizen.health_code))
    assert len(validate(response.get_json(force=True))["entry"]) == 19
    assert many.count == few.count, [q.msg for q in many.get_queries()]


# Who may read
def test_a_station_of_the_citizens_commune_reads_the_record(client, world):
    assert read_as(client, "home", world["citizen"].health_code).status_code == 200


def test_a_station_of_another_commune_gets_the_same_404_as_for_an_unknown_code(client, world):
    stranger = read_as(client, "outsider", world["citizen"].health_code)
    unknown = client.get(url("229999999999"))

    assert stranger.status_code == unknown.status_code == 404
    assert stranger.mimetype == "application/fhir+json"
    assert validate(stranger.get_json(force=True)) == unknown.get_json(force=True)
    assert stranger.get_json(force=True)["issue"][0]["code"] == "not-found"
    assert AuditEvent.select().where(AuditEvent.object_type == "fhir_everything").count() == 0


def test_an_anonymous_request_gets_401(client, world):
    response = client.get(url(world["citizen"].health_code))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    outcome = validate(response.get_json(force=True))
    assert outcome["issue"][0]["code"] == "login"


def test_a_leader_reads_every_commune(client, world):
    citizen = make_citizen(world["elsewhere"], full_name="Phạm Văn Bình")
    assert read_as(client, "leader", citizen.health_code).status_code == 200


def test_an_account_that_must_change_its_password_is_refused(client, world):
    make_staff(world["station"], Role.UNIT_STAFF, username="fresh", must_change=True)

    response = read_as(client, "fresh", world["citizen"].health_code)

    assert response.status_code == 403
    assert validate(response.get_json(force=True))["issue"][0]["code"] == "forbidden"


def test_the_health_code_is_matched_as_typed_in_any_case(client, world):
    citizen = make_citizen(world["home"], full_name="Đỗ Hà", health_code="QN-ab12")
    assert read_as(client, "home", "qn-AB12").status_code == 200
    assert citizen.health_code == "QN-AB12"


def test_a_read_is_audited(client, world):
    citizen = world["citizen"]

    read_as(client, "home", citizen.health_code)

    event = AuditEvent.select().where(AuditEvent.object_type == "fhir_everything").get()
    assert event.action == "view"
    assert event.citizen_id == citizen.id
    assert event.object_id == str(citizen.id)
    assert event.actor == "home"
    assert event.unit_code == "TYT1"
    assert event.details == {"resources": 1}


def test_the_dollar_sign_may_come_percent_encoded(client, world):
    sign_in(client, "home")
    assert client.get(f"/api/v1/fhir/Patient/{world['citizen'].health_code}/%24everything").status_code == 200


def test_an_authorization_header_that_is_no_valid_key_gets_401_even_with_a_session(client, world):
    sign_in(client, "home")

    response = client.get(url(world["citizen"].health_code), headers={"Authorization": "Basic aG9tZTp4"})

    assert response.status_code == 401
    assert validate(response.get_json(force=True))["issue"][0]["code"] == "login"


def test_a_merged_records_old_code_finds_the_survivor(client, world):
    """Duplicate merge keeps old health codes as aliases; the export looks codes up through them."""
    citizen = world["citizen"]
    CitizenAlias.create(citizen=citizen, kind="health_code", value="QN-OLD1")
    sign_in(client, "home")

    response = client.get(url("qn-old1"))

    assert response.status_code == 200
    [patient] = resources_of(validate(response.get_json(force=True)), "Patient")
    assert patient["id"] == f"pat-{citizen.id}"
    assert client.get(url("QN-NONE")).status_code == 404


def test_the_bundle_is_stamped_with_the_portals_clock_in_utc(client, world, monkeypatch):
    monkeypatch.setattr("services.clock.now", lambda: datetime.datetime(2026, 1, 2, 3, 4, 5))

    bundle = read_as(client, "home", world["citizen"].health_code).get_json(force=True)

    assert bundle["timestamp"] == "2026-01-02T03:04:05+00:00"
    assert bundle["link"] == [
        {"relation": "self", "url": f"http://localhost/api/v1/fhir/Patient/{world['citizen'].health_code}/$everything"}
    ]


# API keys: real keys issued and revoked by services.api_keys.
@pytest.fixture
def keys(world):
    """Issue a key for the facility with this code; return its Authorization header."""
    issuer = make_staff(world["station"], Role.SYSTEM_ADMIN, username="keymaster")
    issued = {}

    def header(code):
        if code not in issued:
            issued[code] = api_keys.issue(HealthUnit.get(HealthUnit.code == code), "FHIR", by=issuer)
        return {"Authorization": f"Bearer {issued[code][1]}"}

    header.issued = issued
    header.issuer = issuer
    return header


def test_a_key_of_the_citizens_station_reads_the_record_without_a_cookie(client, world, keys):
    response = client.get(url(world["citizen"].health_code), headers=keys("TYT1"))

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    validate(response.get_json(force=True))
    event = AuditEvent.select().where(AuditEvent.object_type == "fhir_everything").get()
    assert (event.actor, event.unit_code, event.actor_id, event.citizen_id) == (
        "api:TYT1",
        "TYT1",
        None,
        world["citizen"].id,
    )


def test_a_key_of_a_facility_the_citizen_visited_reads_the_record(client, world, keys):
    citizen = world["citizen"]
    assert client.get(url(citizen.health_code), headers=keys("BVDK")).status_code == 404
    Encounter.create(citizen=citizen, facility=world["hospital"], date=datetime.date(2025, 1, 1))

    response = client.get(url(citizen.health_code), headers=keys("BVDK"))

    assert response.status_code == 200
    assert len(resources_of(validate(response.get_json(force=True)), "Encounter")) == 1


def test_a_key_of_a_foreign_facility_gets_404_and_a_bad_key_401(client, world, keys):
    foreign = client.get(url(world["citizen"].health_code), headers=keys("TYT2"))
    bad = client.get(url(world["citizen"].health_code), headers={"Authorization": "Bearer nope"})

    assert foreign.status_code == 404
    assert validate(foreign.get_json(force=True))["issue"][0]["code"] == "not-found"
    assert bad.status_code == 401
    assert "Set-Cookie" not in bad.headers
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.select().where(AuditEvent.object_type == "fhir_everything").count() == 0


def test_a_revoked_key_gets_401(client, world, keys):
    headers = keys("TYT1")
    assert client.get(url(world["citizen"].health_code), headers=headers).status_code == 200

    api_keys.revoke(keys.issued["TYT1"][0], by=keys.issuer)
    response = client.get(url(world["citizen"].health_code), headers=headers)

    assert response.status_code == 401
    assert validate(response.get_json(force=True))["issue"][0]["code"] == "login"
    assert AuditEvent.select().where(AuditEvent.object_type == "fhir_everything").count() == 1


def test_a_wrong_method_or_unknown_fhir_path_is_an_operation_outcome(client, world):
    wrong_method = client.post(url(world["citizen"].health_code), json={})
    unknown = client.get("/api/v1/fhir/Observation/1")

    assert (wrong_method.status_code, unknown.status_code) == (405, 404)
    assert "GET" in wrong_method.headers["Allow"]
    for response, code in ((wrong_method, "not-supported"), (unknown, "not-found")):
        assert response.mimetype == "application/fhir+json"
        assert validate(response.get_json(force=True))["issue"][0]["code"] == code
