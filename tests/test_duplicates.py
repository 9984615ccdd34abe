"""Duplicate persons (issue 6 §2): found on create, import and scan; reviewed, merged or remembered apart."""

import datetime

import pytest

from migrations.m0004_risk_declarations import DEFAULT_CHECKLIST
from migrations.m0004_risk_declarations import seed_defaults
from models.accounts import Role
from models.accounts import Scope
from models.audit import AuditEvent
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.citizens import Household
from models.corrections import CorrectionRequest
from models.duplicates import CitizenAlias
from models.duplicates import DuplicateCandidate
from models.lookup import CitizenSession
from models.lookup import LookupChallenge
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.risk import Checklist
from models.risk import Declaration
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import declare
from models.units import UnitKind
from models.validation import FieldError
from services import duplicates
from services.citizen_import import import_citizens
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import csrf_from
from tests.helpers import sign_in

BORN = datetime.date(1990, 5, 6)
NOW = datetime.datetime(2026, 11, 1, 8, 0, 0)
NO_SYMPTOMS = {"fever": "no", "cough": "no", "breathing": "no", "taste_smell": "no", "close_contact": "none",
               "outbreak_travel": "no"}  # fmt: skip


@pytest.fixture
def world(app):
    """A station over one commune (owner, colleague), another station over the next (outsider)."""
    wards = wards_of(n=2)
    home = make_unit(UnitKind.COMMUNE_STATION, wards=wards[:1], code="TYT-A")
    away = make_unit(UnitKind.COMMUNE_STATION, wards=wards[1:], code="TYT-B")
    owner = make_staff(home, Role.UNIT_STAFF, username="owner")
    make_staff(home, Role.UNIT_STAFF, username="colleague")
    make_staff(away, Role.UNIT_STAFF, username="outsider")
    return {"wards": wards, "owner": owner}


def twins(ward, **second):
    """Two records of one person: the older with an ID number, the newer with a phone."""
    first = make_citizen(ward, full_name="Nguyễn Thị Mai", date_of_birth=BORN, gender="F", national_id="022190000123")
    fields = {"full_name": "nguyen thi mai", "date_of_birth": BORN, "gender": "F", "phone": "0912345678", **second}
    return first, make_citizen(ward, **fields)


def pairs():
    return {(c.citizen_a_id, c.citizen_b_id, c.reason, c.status) for c in DuplicateCandidate.select()}


# Detection
def test_the_rules_find_same_id_or_same_folded_name_birth_date_and_phone_or_commune(world):
    ward, other_ward = world["wards"]
    a = make_citizen(ward, full_name="Trần Văn Đức", date_of_birth=BORN, phone="0912000001")
    b = make_citizen(other_ward, full_name="tran van duc", date_of_birth=BORN, phone="0912000001")  # phone
    c = make_citizen(ward, full_name="TRẦN VĂN ĐỨC", date_of_birth=BORN)  # commune
    d = make_citizen(other_ward, full_name="Lê Văn Tám", national_id="022090001234", date_of_birth=BORN, gender="M")
    e = make_citizen(ward, full_name="Lê Tám", national_id="022090001234", date_of_birth=BORN, gender="M")  # ID
    third_ward = wards_of(n=3)[2]
    make_citizen(third_ward, full_name="Trần Văn Đức", date_of_birth=BORN, phone="0912000002")  # a stranger
    make_citizen(ward, full_name="Trần Văn Đức", date_of_birth=datetime.date(1991, 5, 6))  # born another day

    assert duplicates.find_duplicates_of([b.id, c.id, e.id]) == 3

    assert pairs() == {
        (a.id, b.id, "name_dob_phone", "open"),
        (a.id, c.id, "name_dob_ward", "open"),
        (d.id, e.id, "national_id", "open"),
    }
    assert duplicates.find_duplicates_of([b.id, c.id, e.id]) == 0  # already queued


def test_a_citizen_created_in_the_back_office_is_queued_with_its_namesake(world, client):
    ward = world["wards"][0]
    older = make_citizen(ward, full_name="Phạm Văn Hùng", date_of_birth=BORN, phone="0912345678")
    sign_in(client, "owner")
    data = {
        "full_name": "Pham Van Hung",
        "date_of_birth": "06/05/1990",
        "phone": "0912345678",
        "ward": str(ward),
        "csrf_token": admin_token(client, "/admin/citizen/new/"),
    }
    assert client.post("/admin/citizen/new/", data=data).status_code == 302
    newer = Citizen.get(Citizen.full_name == "Pham Van Hung")
    assert pairs() == {(older.id, newer.id, "name_dob_phone", "open")}
    page = client.get(f"/admin/citizen/details/?id={older.id}")
    assert "Pham Van Hung" in page.text and "/admin/duplicate/details/" in page.text


def test_an_import_of_the_same_person_with_another_health_code_is_queued(world, tmp_path):
    ward = world["wards"][0]
    existing = make_citizen(ward, full_name="Nguyễn Văn An", date_of_birth=BORN, phone="0912345678")
    path = tmp_path / "people.csv"
    rows = [
        "full_name,date_of_birth,phone,health_code,ward_code",
        f"Nguyen Van An,06/05/1990,0912345678,QN-OLD-0001,{ward:05d}",
        f"Hoàng Thị Lan,01/01/1970,0987000001,,{ward:05d}",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = import_citizens(path, Scope.everything())

    assert result.created == 2
    imported = Citizen.get(Citizen.health_code == "QN-OLD-0001")
    assert pairs() == {(existing.id, imported.id, "name_dob_phone", "open")}


def test_a_pair_decided_not_a_duplicate_is_never_queued_again(world):
    first, second = twins(world["wards"][0])
    duplicates.find_duplicates_of([second.id])
    candidate = DuplicateCandidate.get()
    with pytest.raises(FieldError):
        candidate.mark_not_duplicate(by=world["owner"], note="  ")
    candidate.mark_not_duplicate(by=world["owner"], note="Twins: two people")

    assert duplicates.find_duplicates_of([first.id, second.id]) == 0
    assert duplicates.scan() == 0
    assert pairs() == {(first.id, second.id, "name_dob_ward", "not_duplicate")}


def test_the_scan_groups_the_whole_table_and_queues_each_pair_once(world, app):
    ward, other_ward = world["wards"]
    a = make_citizen(ward, full_name="Vũ Thị Hoa", date_of_birth=BORN, phone="0912000009")
    b = make_citizen(other_ward, full_name="vu thi hoa", date_of_birth=BORN, phone="0912000009")
    c = make_citizen(other_ward, full_name="Vũ Thị  Hoa", date_of_birth=BORN)
    d = make_citizen(ward, full_name="Đỗ Minh", national_id="022090001234", date_of_birth=BORN, gender="M")
    e = make_citizen(other_ward, full_name="Đỗ Minh Tuấn", national_id="022090001234", date_of_birth=BORN, gender="M")
    make_citizen(ward, full_name="Vũ Văn Hoa", date_of_birth=BORN, phone="0912000009")  # another name

    assert duplicates.scan(batch=1) == 3
    assert pairs() == {
        (a.id, b.id, "name_dob_phone", "open"),
        (b.id, c.id, "name_dob_ward", "open"),
        (d.id, e.id, "national_id", "open"),
    }
    result = app.test_cli_runner().invoke(args=["find-duplicates"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "queued=0"


# Merge
@pytest.fixture
def full_pair(world):
    """Two records of one person, each with one row of every kind, related to each other and to others."""
    ward = world["wards"][0]
    first, second = twins(ward, insurance_number="DN4220123456789")
    household = Household.create(book_number="HK-9", ward=ward)
    Citizen.update(household=household, relation_to_head="spouse").where(Citizen.id == second.id).execute()
    second = Citizen.get_by_id(second.id)
    mother = make_citizen(ward, full_name="Lê Thị Mẹ")
    child = make_citizen(ward, full_name="Nguyễn Bé")
    vaccine = Vaccine.create(code="MR", name="Sởi - Rubella", disease="Sởi", doses_in_schedule=2)
    seed_defaults()
    version = Checklist.get(Checklist.name == DEFAULT_CHECKLIST).current_version()
    for n, citizen in enumerate((first, second)):
        Condition.create(citizen=citizen, name=f"Tăng huyết áp {n}")
        Allergy.create(citizen=citizen, substance=f"Penicillin {n}")
        Encounter.create(citizen=citizen, date=datetime.date(2025, 1, 1 + n), facility_name="BV Bãi Cháy")
        Vaccination.create(citizen=citizen, vaccine=vaccine, dose_number=1, date=datetime.date(2024, 1, 1 + n))
        CorrectionRequest.create(citizen=citizen, field="email", proposed_value=f"mai{n}@example.vn")
        LookupChallenge.create(
            token=f"t{n}", citizen_id=citizen.id, phone="0912345678", health_code=citizen.health_code,
            code_hash="x", expires_at=NOW,
        )  # fmt: skip
        CitizenSession.create(token=f"s{n}", citizen_id=citizen.id, started_at=NOW)
        person = {"citizen_id": citizen.id, "full_name": citizen.full_name, "date_of_birth": BORN,
                  "phone": "0912345678", "ward": ward}  # fmt: skip
        declare(version, person, dict(NO_SYMPTOMS), NOW)
    Vaccination.create(citizen=second, vaccine=vaccine, dose_number=2, date=datetime.date(2024, 3, 1))
    FamilyRelation.create(citizen=first, relative=mother, kind="mother")
    FamilyRelation.create(citizen=second, relative=mother, kind="mother")  # the same relation twice
    FamilyRelation.create(citizen=child, relative=second, kind="mother")  # incoming
    FamilyRelation.create(citizen=first, relative=second, kind="spouse")  # the two themselves
    duplicates.find_duplicates_of([second.id])
    return {"first": first, "second": second, "mother": mother, "child": child, "household": household}


def rows_of(citizen_id):
    """How many rows of each kind point at a citizen."""
    counts = {}
    for field in Citizen._meta.backrefs:
        counts[f"{field.model._meta.table_name}.{field.name}"] = field.model.select().where(field == citizen_id).count()
    for model in (LookupChallenge, CitizenSession):
        counts[model._meta.table_name] = model.select().where(model.citizen_id == citizen_id).count()
    return counts


def test_a_merge_moves_every_related_row_to_the_survivor_and_deletes_the_other(world, full_pair):
    first, second = full_pair["first"], full_pair["second"]
    choices = duplicates.default_choices(first, second)

    moved = duplicates.merge(first, second, choices, by=world["owner"], note="one person")

    assert not Citizen.select().where(Citizen.id == second.id).exists()
    assert not any(rows_of(second.id).values()), rows_of(second.id)
    survivor = Citizen.get_by_id(first.id)
    assert Condition.select().where(Condition.citizen == first).count() == 2
    assert Allergy.select().where(Allergy.citizen == first).count() == 2
    assert Encounter.select().where(Encounter.citizen == first).count() == 2
    assert sorted(v.dose_number for v in survivor.vaccinations) == [1, 2]  # one dose 1 kept, dose 2 moved
    assert CorrectionRequest.select().where(CorrectionRequest.citizen == first).count() == 2
    assert Declaration.select().where(Declaration.citizen == first).count() == 2
    [case] = RiskCase.select().where(RiskCase.citizen == first)  # the other's open case joined it
    assert {d.case_id for d in Declaration.select().where(Declaration.citizen == first)} == {case.id}
    assert LookupChallenge.select().where(LookupChallenge.citizen_id == first.id).count() == 2
    assert CitizenSession.select().where(CitizenSession.citizen_id == first.id).count() == 2
    family = {(kind, relative.id) for kind, relative in survivor.family()}
    assert family == {("mother", full_pair["mother"].id), ("child", full_pair["child"].id)}  # no self, no repeat
    assert FamilyRelation.select().count() == 2
    assert survivor.household_id == full_pair["household"].id  # it had none: the other's is kept
    assert (survivor.national_id, survivor.phone, survivor.insurance_number) == (
        "022190000123",
        "0912345678",
        "DN4220123456789",
    )
    assert moved["vaccination"] == 1 and moved["condition"] == 1 and moved["family_relation"] == 1
    candidate = DuplicateCandidate.get()
    assert (candidate.status, candidate.survivor_id, candidate.note) == ("merged", first.id, "one person")
    assert {(a.kind, a.value) for a in survivor.aliases} == {("health_code", second.health_code)}


def test_a_merge_is_audited_with_both_records_the_moves_and_the_dropped_dose(world, full_pair):
    first, second = full_pair["first"], full_pair["second"]
    duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])

    [event] = AuditEvent.select().where((AuditEvent.citizen_id == first.id) & (AuditEvent.action == "update"))
    detail = event.details
    assert event.actor == "owner" and event.object_type == "citizen_merge"
    assert detail["before"]["merged"]["health_code"] == second.health_code
    assert detail["before"]["survivor"]["phone"] is None and detail["after"]["phone"] == "0912345678"
    assert detail["moved"]["encounter"] == 1
    assert [d["dose_number"] for d in detail["dropped_vaccinations"]] == [1]
    assert detail["changes"]["phone"] == [None, "0912345678"]
    gone = AuditEvent.get((AuditEvent.citizen_id == second.id) & (AuditEvent.action == "delete"))
    assert gone.details["merged_into"] == first.id


def test_the_chosen_values_are_applied_and_the_old_codes_become_aliases(world, full_pair):
    first, second = full_pair["first"], full_pair["second"]
    old_code = first.health_code
    choices = {**duplicates.default_choices(first, second), "full_name": "merged", "health_code": "merged"}

    duplicates.merge(first, second, choices, by=world["owner"])

    survivor = Citizen.get_by_id(first.id)
    assert (survivor.full_name, survivor.health_code) == ("nguyen thi mai", second.health_code)
    assert {(a.kind, a.value) for a in survivor.aliases} == {("health_code", old_code)}
    assert Citizen.find_by_health_code(old_code).id == first.id
    assert Citizen.find_by_health_code(second.health_code).id == first.id
    assert Citizen.id_matching(old_code, "0912345678") == first.id
    assert Citizen.id_matching(old_code, "0987654321") is None
    assert Citizen.find_by_health_code("221234567897") is None


def test_an_id_number_or_insurance_number_not_kept_becomes_an_alias(world):
    ward = world["wards"][0]
    first, second = twins(ward, national_id="022190000999", insurance_number="DN4220123456789")
    Citizen.update(insurance_number="GD4220000000001").where(Citizen.id == first.id).execute()
    first = Citizen.get_by_id(first.id)

    duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])

    aliases = {(a.kind, a.value) for a in CitizenAlias.select().where(CitizenAlias.citizen == first.id)}
    assert aliases == {
        ("health_code", second.health_code),
        ("national_id", "022190000999"),
        ("insurance_number", "DN4220123456789"),
    }


def test_a_new_record_with_a_merged_records_old_code_is_queued_with_the_survivor(world):
    ward = world["wards"][0]
    first, second = twins(ward)
    duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])

    again = make_citizen(ward, full_name="Nguyễn T. Mai", health_code=second.health_code)
    duplicates.find_duplicates_of([again.id])

    assert (first.id, again.id, "alias", "open") in pairs()


def test_an_import_row_with_a_merged_records_old_codes_updates_the_survivor(world, tmp_path):
    ward = world["wards"][0]
    first, second = twins(ward, national_id="022190000999")
    choices = duplicates.default_choices(first, second)  # keeps the first's code and ID number
    duplicates.merge(first, second, choices, by=world["owner"])
    kept_code = Citizen.get_by_id(first.id).health_code
    path = tmp_path / "old.csv"
    path.write_text(
        "full_name,date_of_birth,health_code,national_id,occupation,ward_code\n"
        f"Nguyễn Thị Mai,06/05/1990,{second.health_code},022190000999,Giáo viên,{ward:05d}\n",
        encoding="utf-8",
    )

    result = import_citizens(path, Scope.everything())
    again = import_citizens(path, Scope.everything())

    assert (result.created, result.updated, result.rejected) == (0, 1, [])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    survivor = Citizen.get_by_id(first.id)
    assert survivor.occupation == "Giáo viên"
    assert (survivor.health_code, survivor.national_id) == (kept_code, "022190000123")  # old codes stay aliases
    assert Citizen.select().count() == 1


def test_the_merged_records_other_pairs_now_speak_of_the_survivor(world):
    ward = world["wards"][0]
    x, y, z = (make_citizen(ward, full_name="Mai Văn Ba", date_of_birth=BORN) for _ in range(3))
    w = make_citizen(ward, full_name="Mai Văn Ba", date_of_birth=BORN, phone="0912000003")
    duplicates.find_duplicates_of([y.id, z.id, w.id])
    DuplicateCandidate.get(citizen_a_id=y.id, citizen_b_id=w.id).mark_not_duplicate(by=world["owner"], note="no")

    duplicates.merge(x, y, duplicates.default_choices(x, y), by=world["owner"])

    assert pairs() == {
        (x.id, y.id, "name_dob_ward", "merged"),
        (x.id, z.id, "name_dob_ward", "open"),  # (y, z) went: it repeated (x, z)
        (x.id, w.id, "name_dob_ward", "not_duplicate"),  # the decision about y now holds for x
        (z.id, w.id, "name_dob_ward", "open"),
    }


def test_a_merge_without_a_queued_pair_records_one_chosen_by_staff(world):
    ward, other_ward = world["wards"]
    first = make_citizen(ward, full_name="Hà Văn Một", date_of_birth=BORN)
    second = make_citizen(other_ward, full_name="Hà Văn Hai")
    duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])
    assert pairs() == {(first.id, second.id, "manual", "merged")}


def test_the_public_lookup_with_the_merged_records_old_code_reaches_the_survivor(world, full_pair, app):
    first, second = full_pair["first"], full_pair["second"]
    Encounter.create(citizen=first, date=datetime.date(2025, 6, 1), facility_name="BV", diagnosis="Viêm họng")
    duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])
    public = app.test_client()

    token = csrf_from(public.get("/lookup").text)
    asked = public.post("/lookup", data={"health_code": second.health_code, "phone": "0912345678", "csrf_token": token})
    challenge = LookupChallenge.select().order_by(LookupChallenge.id.desc()).first()
    assert challenge.citizen_id == first.id and challenge.sent

    app.extensions["sms"].flush()
    import json
    import re

    with open(app.config["SMS_OUTBOX"], encoding="utf-8") as lines:
        code = re.search(r"\b(\d{6})\b", [json.loads(line) for line in lines][-1]["text"]).group(1)
    answer = public.post("/lookup/verify", data={"otp": code, "csrf_token": csrf_from(asked.text)})
    assert answer.status_code == 303
    assert "Viêm họng" in public.get("/record").text


def test_two_open_cases_of_one_disease_become_one_keeping_both_timelines(world, full_pair, client):
    first, second = full_pair["first"], full_pair["second"]
    keeper = RiskCase.get(RiskCase.citizen == first)
    other = RiskCase.get(RiskCase.citizen == second)
    RiskCase.update(risk_level=RiskLevel.HIGH, risk_rank=RiskLevel.RANK[RiskLevel.HIGH], assignee=world["owner"]).where(
        RiskCase.id == other.id
    ).execute()

    moved = duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])

    assert moved["risk_cases_joined"] == [other.number]
    assert not RiskCase.select().where(RiskCase.id == other.id).exists()
    case = RiskCase.get_by_id(keeper.id)
    assert (case.risk_level, case.assignee_id, case.status) == (RiskLevel.HIGH, world["owner"].id, "new")
    events = [(e.kind, e.note) for e in case.timeline()]
    assert events == [("declared", ""), ("declared", ""), ("joined", other.number)]
    version = Checklist.get(Checklist.name == DEFAULT_CHECKLIST).current_version()
    person = {"citizen_id": first.id, "full_name": first.full_name, "date_of_birth": BORN, "phone": "0912345678",
              "ward": world["wards"][0]}  # fmt: skip
    _declaration, again, opened = declare(version, person, dict(NO_SYMPTOMS), NOW)
    assert (again.id, opened) == (keeper.id, False)  # the person's one open case

    sign_in(client, "owner")
    page = client.get(f"/admin/risk_case/details/?id={keeper.id}")
    assert page.status_code == 200
    assert f"Ca {other.number} (Mới) của hồ sơ trùng đã gộp vào người này được nhập vào ca này." in page.text


def test_a_failure_part_way_leaves_both_records_intact(world, full_pair, monkeypatch):
    first, second = full_pair["first"], full_pair["second"]
    before = (rows_of(first.id), rows_of(second.id))

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(duplicates, "_move_risk_cases", broken)
    with pytest.raises(RuntimeError):
        duplicates.merge(first, second, duplicates.default_choices(first, second), by=world["owner"])

    assert Citizen.select().where(Citizen.id.in_([first.id, second.id])).count() == 2
    assert (rows_of(first.id), rows_of(second.id)) == before
    assert DuplicateCandidate.get().status == "open"
    assert not CitizenAlias.select().exists()
    assert not AuditEvent.select().where(AuditEvent.object_type == "citizen_merge").exists()


def test_invalid_chosen_values_refuse_the_merge_and_change_nothing(world, app):
    ward = world["wards"][0]
    first = make_citizen(ward, full_name="Ngô Văn Bảo", date_of_birth=BORN, gender="M", national_id="022090001234")
    second = make_citizen(ward, full_name="Ngô Văn Bảo", date_of_birth=datetime.date(2001, 1, 1), gender="F")
    choices = {**duplicates.default_choices(first, second), "gender": "merged"}  # female with a man's CCCD
    with pytest.raises(FieldError):
        duplicates.merge(first, second, choices, by=world["owner"])
    assert Citizen.select().count() == 2 and Citizen.get_by_id(first.id).gender == "M"


# The back office
def merge_form(client, candidate, **fields):
    token = admin_token(client, f"/admin/duplicate/details/?id={candidate.id}")
    return {"csrf_token": token, "id": str(candidate.id), "survivor": "a", **fields}


def test_the_owner_merges_through_the_screen_with_a_field_choice(world, full_pair, client):
    first, second = full_pair["first"], full_pair["second"]
    candidate = DuplicateCandidate.get()
    sign_in(client, "colleague")
    page = client.get(f"/admin/duplicate/details/?id={candidate.id}")
    assert page.status_code == 200
    assert 'name="field_full_name"' in page.text and second.health_code in page.text

    response = client.post(
        "/admin/duplicate/merge/", data=merge_form(client, candidate, survivor="b", field_full_name="a")
    )

    assert response.status_code == 302 and f"id={second.id}" in response.headers["Location"]
    survivor = Citizen.get_by_id(second.id)
    assert survivor.full_name == "Nguyễn Thị Mai"  # the first record's spelling, picked by hand
    assert survivor.national_id == "022190000123"  # empty on the survivor: the other's by default
    assert not Citizen.select().where(Citizen.id == first.id).exists()
    assert Citizen.find_by_health_code(first.health_code).id == second.id


def test_the_list_is_scoped_and_filtered(world, full_pair, client):
    ward, other_ward = world["wards"]
    make_citizen(other_ward, full_name="Lý Văn Xa", date_of_birth=BORN)
    far = make_citizen(other_ward, full_name="Ly Van Xa", date_of_birth=BORN)
    duplicates.find_duplicates_of([far.id])
    sign_in(client, "owner")
    listing = client.get("/admin/duplicate/")
    assert listing.status_code == 200
    assert "Nguyễn Thị Mai" in listing.text and "Lý Văn Xa" not in listing.text
    assert "Nguyễn Thị Mai" not in client.get("/admin/duplicate/?flt0_0=national_id").text  # by reason
    assert "Nguyễn Thị Mai" in client.get("/admin/duplicate/?flt0_0=name_dob_ward").text
    assert "Nguyễn Thị Mai" not in client.get("/admin/duplicate/?flt0_1=merged").text  # by status
    assert "Nguyễn Thị Mai" in client.get("/admin/duplicate/?flt0_1=open").text
    sign_in(client, "outsider")
    listing = client.get("/admin/duplicate/")
    assert "Lý Văn Xa" in listing.text and "Nguyễn Thị Mai" not in listing.text


def test_a_pair_across_two_jurisdictions_is_seen_by_neither_station(world, client):
    ward, other_ward = world["wards"]
    make_citizen(ward, full_name="Đinh Văn Hai", date_of_birth=BORN, phone="0912000005")
    far = make_citizen(other_ward, full_name="Đinh Văn Hai", date_of_birth=BORN, phone="0912000005")
    duplicates.find_duplicates_of([far.id])
    candidate = DuplicateCandidate.get()
    for username in ("owner", "outsider"):
        sign_in(client, username)
        assert "Đinh Văn Hai" not in client.get("/admin/duplicate/").text
        assert client.get(f"/admin/duplicate/details/?id={candidate.id}").status_code in (302, 404)


def test_an_outsider_can_neither_see_the_pair_nor_merge_it_by_url(world, full_pair, client):
    candidate = DuplicateCandidate.get()
    sign_in(client, "owner")
    form = merge_form(client, candidate)
    sign_in(client, "outsider")
    assert client.get(f"/admin/duplicate/details/?id={candidate.id}").status_code in (302, 404)
    form["csrf_token"] = admin_token(client, "/admin/citizen/new/")
    assert client.post("/admin/duplicate/merge/", data=form).status_code == 404
    assert client.post("/admin/duplicate/not-duplicate/", data={**form, "note": "x"}).status_code == 404
    assert Citizen.select().where(Citizen.id == full_pair["second"].id).exists()
    assert DuplicateCandidate.get().status == "open"


def test_a_merge_without_a_valid_csrf_token_is_refused(world, full_pair, client):
    candidate = DuplicateCandidate.get()
    sign_in(client, "owner")
    form = merge_form(client, candidate)
    for token in (None, "forged"):
        data = {k: v for k, v in form.items() if k != "csrf_token"}
        if token:
            data["csrf_token"] = token
        assert client.post("/admin/duplicate/merge/", data=data).status_code == 400
    assert Citizen.select().where(Citizen.id == full_pair["second"].id).exists()


def test_a_leader_who_only_views_cannot_merge(world, full_pair, client):
    department = make_unit(UnitKind.DEPARTMENT, wards=())
    make_staff(department, Role.DEPARTMENT_LEADER, username="leader")
    candidate = DuplicateCandidate.get()
    sign_in(client, "leader")
    page = client.get(f"/admin/duplicate/details/?id={candidate.id}")
    assert page.status_code == 200 and 'name="survivor"' not in page.text
    form = {"id": str(candidate.id), "survivor": "a", "csrf_token": "any"}
    assert client.post("/admin/duplicate/merge/", data=form).status_code == 403


def test_not_a_duplicate_through_the_screen_is_remembered_and_audited(world, full_pair, client):
    candidate = DuplicateCandidate.get()
    sign_in(client, "owner")
    form = merge_form(client, candidate, note="Chị em sinh đôi")
    del form["survivor"]
    assert client.post("/admin/duplicate/not-duplicate/", data=form).status_code == 302
    candidate = DuplicateCandidate.get()
    assert (candidate.status, candidate.note, candidate.decided_by_id) == (
        "not_duplicate",
        "Chị em sinh đôi",
        world["owner"].id,
    )
    assert (
        AuditEvent.get((AuditEvent.object_type == "duplicate_candidate") & (AuditEvent.action == "update")).details[
            "note"
        ]
        == "Chị em sinh đôi"
    )
    assert duplicates.find_duplicates_of([full_pair["second"].id]) == 0
