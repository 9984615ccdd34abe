"""Citizens in the back office: validation in the domain, search, history and audit."""

import datetime

import pytest

from models.accounts import Role
from models.audit import AuditEvent
from models.citizens import Citizen
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.records import vaccination_status
from models.units import UnitKind
from models.validation import FieldError
from models.validation import is_portal_health_code
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import admin_token
from tests.helpers import sign_in


@pytest.fixture
def station(app):
    wards = wards_of(n=2)
    unit = make_unit(UnitKind.COMMUNE_STATION, wards=wards[:1], code="TYT")
    make_staff(unit, Role.UNIT_STAFF, username="lan")
    return unit


@pytest.fixture
def client_in(app, station):
    client = app.test_client()
    sign_in(client, "lan")
    return client


def citizen_form(client, **fields):
    ward = wards_of(n=1)[0]
    data = {"full_name": "Nguyễn Văn Đức", "ward": str(ward), "csrf_token": admin_token(client, "/admin/citizen/new/")}
    data.update(fields)
    return data


def test_a_new_citizen_gets_a_health_code_with_a_check_digit(client_in):
    response = client_in.post("/admin/citizen/new/", data=citizen_form(client_in, phone="+84 912 345 678"))
    assert response.status_code == 302
    citizen = Citizen.get()
    assert is_portal_health_code(citizen.health_code)
    assert citizen.health_code.startswith("22")
    assert citizen.phone == "0912345678"
    event = AuditEvent.get(AuditEvent.action == "create")
    assert event.citizen_id == citizen.id
    assert event.details["changes"]["full_name"] == [None, "Nguyễn Văn Đức"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "0123"),
        ("national_id", "12345"),
        ("insurance_number", "XX"),
        ("date_of_birth", "31/02/2001"),
        ("date_of_birth", "01/01/2999"),
        ("email", "not-an-email"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_lost(client_in, field, value):
    data = citizen_form(client_in, **{field: value}, permanent_address="Số 5, tổ 2")
    response = client_in.post("/admin/citizen/new/", data=data)
    assert response.status_code == 200
    assert Citizen.select().count() == 0
    # The form comes back with what was typed.
    assert "Số 5, tổ 2" in response.text
    assert "is-invalid" in response.text or "invalid-feedback" in response.text


def test_a_cccd_inconsistent_with_the_birth_year_is_refused(client_in):
    data = citizen_form(client_in, date_of_birth="02/03/1990", gender="M", national_id="022085000123")
    response = client_in.post("/admin/citizen/new/", data=data)
    assert response.status_code == 200
    assert Citizen.select().count() == 0


def test_a_consistent_cccd_is_accepted(client_in):
    data = citizen_form(client_in, date_of_birth="02/03/1990", gender="M", national_id="022090000123")
    assert client_in.post("/admin/citizen/new/", data=data).status_code == 302
    assert Citizen.get().date_of_birth == datetime.date(1990, 3, 2)


def test_a_duplicate_health_code_is_refused_with_the_field_named(client_in):
    existing = make_citizen(wards_of(n=1)[0], health_code="QN-12345")
    response = client_in.post("/admin/citizen/new/", data=citizen_form(client_in, health_code="qn-12345"))
    assert response.status_code == 200
    assert Citizen.select().count() == 1
    assert Citizen.get().id == existing.id


def test_an_update_is_audited_and_shown_in_the_history(client_in):
    citizen = make_citizen(wards_of(n=1)[0], phone="0912000111")
    data = citizen_form(client_in, health_code=citizen.health_code, phone="0987000222")
    data["csrf_token"] = admin_token(client_in, f"/admin/citizen/edit/?id={citizen.id}")
    assert client_in.post(f"/admin/citizen/edit/?id={citizen.id}", data=data).status_code == 302
    event = AuditEvent.get(AuditEvent.action == "update")
    assert event.details["changes"]["phone"] == ["0912000111", "0987000222"]
    page = client_in.get(f"/admin/citizen/details/?id={citizen.id}").text
    assert "0912000111" in page and "0987000222" in page


def test_viewing_a_citizen_is_audited(client_in):
    citizen = make_citizen(wards_of(n=1)[0])
    client_in.get(f"/admin/citizen/details/?id={citizen.id}")
    event = AuditEvent.get(AuditEvent.action == "view")
    assert (event.actor, event.citizen_id, event.object_type) == ("lan", citizen.id, "citizen")


def test_searching_is_audited_with_the_term_and_the_rows_shown(client_in):
    citizen = make_citizen(wards_of(n=1)[0])
    client_in.get("/admin/citizen/?search=nguyen")
    event = AuditEvent.get(AuditEvent.action == "search")
    assert event.details["search"] == "nguyen"
    assert event.details["ids"] == [citizen.id]


def test_exporting_is_audited(client_in):
    make_citizen(wards_of(n=1)[0])
    client_in.get("/admin/citizen/export/csv/")
    assert AuditEvent.select().where(AuditEvent.action == "export").count() == 1


@pytest.mark.parametrize(
    "query",
    [
        "nguyen van duc",
        "NGUYEN VAN ĐUC",
        "Nguyễn Văn Đức",
        "duc nguyen",
        "ngu du",
        "0912345678",
        "+84912345678",
        "912345",
    ],
)
def test_search_ignores_diacritics_and_phone_prefixes(app, station, query):
    ward = wards_of(n=1)[0]
    wanted = make_citizen(ward, full_name="Nguyễn Văn Đức", phone="0912345678")
    make_citizen(ward, full_name="Trần Thị Dung", phone="0987654321")
    assert [c.id for c in Citizen.matching(query)] == [wanted.id]


def test_search_finds_health_code_national_id_and_address(app, station):
    ward = wards_of(n=1)[0]
    wanted = make_citizen(
        ward,
        national_id="022090000123",
        date_of_birth=datetime.date(1990, 1, 1),
        gender="M",
        permanent_address="Số 7, khu Đồng Đăng",
    )
    make_citizen(ward, full_name="Trần Thị Dung")
    for query in [wanted.health_code, "022090000123", "dong dang"]:
        assert [c.id for c in Citizen.matching(query)] == [wanted.id], query


def test_search_follows_a_change_of_name(app, station):
    citizen = make_citizen(wards_of(n=1)[0], full_name="Lê Văn Tám")
    citizen.full_name = "Lê Văn Chín"
    citizen.save()
    assert list(Citizen.matching("tam")) == []
    assert [c.id for c in Citizen.matching("chin")] == [citizen.id]


def test_search_text_with_quotes_or_operators_does_not_break(app, station):
    make_citizen(wards_of(n=1)[0])
    for query in ['"', "a OR b", "NEAR(", "*", "a:*", "'; drop table citizen; --", "%_"]:
        list(Citizen.matching(query))


def test_a_citizen_with_records_is_not_deleted_silently(app, station):
    admin_unit = make_unit(UnitKind.DEPARTMENT, code="SYT")
    make_staff(admin_unit, Role.SYSTEM_ADMIN, username="root")
    client = app.test_client()
    sign_in(client, "root")
    citizen = make_citizen(wards_of(n=1)[0])
    Encounter.create(citizen=citizen, date=datetime.date(2025, 1, 2), facility_name="BV")
    token = admin_token(client, "/admin/citizen/")
    page = client.post("/admin/citizen/delete/", data={"id": citizen.id, "csrf_token": token}, follow_redirects=True)
    assert Citizen.get_or_none(Citizen.id == citizen.id) is not None
    assert "encounter (1)" in page.text


def test_vaccination_status_counts_doses_per_vaccine(app, station):
    citizen = make_citizen(wards_of(n=1)[0])
    covid = Vaccine.create(
        code="COVID", name="COVID-19", disease="COVID-19", doses_in_schedule=2, boosters_allowed=True
    )
    measles = Vaccine.create(code="MR", name="Sởi-Rubella", disease="Sởi", doses_in_schedule=2)
    Vaccination.create(citizen=citizen, vaccine=covid, dose_number=1, date=datetime.date(2021, 8, 1))
    Vaccination.create(citizen=citizen, vaccine=covid, dose_number=2, date=datetime.date(2021, 9, 1))
    assert {v.code: n for v, n in vaccination_status(citizen)} == {"COVID": 2, "MR": 0}
    with pytest.raises(FieldError) as error:
        Vaccination.create(citizen=citizen, vaccine=measles, dose_number=3, date=datetime.date(2021, 9, 1))
    assert error.value.field == "dose_number"


def test_a_record_part_date_in_the_future_is_refused(app, station):
    citizen = make_citizen(wards_of(n=1)[0])
    with pytest.raises(FieldError) as error:
        Encounter.create(citizen=citizen, date=datetime.date.today() + datetime.timedelta(days=2), facility_name="BV")
    assert error.value.field == "date"
    assert Encounter.select().count() == 0


def test_search_finds_every_code_by_its_beginning_and_wildcards_are_mere_punctuation(app, station):
    ward = wards_of(n=1)[0]
    wanted = make_citizen(
        ward,
        full_name="Phạm Thị Hoa",
        phone="0912345678",
        national_id="022190000456",
        old_national_id="100200300",
        insurance_number="GD4222286028977",
        date_of_birth=datetime.date(1990, 2, 3),
        gender="F",
    )
    other = make_citizen(ward, full_name="Phạm Văn Hòa", phone="0987654321")
    for query in [wanted.health_code[:6], "0221900", "1002003", "gd42222", "GD4222286028977", "hoa 09123", "91234"]:
        assert [c.id for c in Citizen.matching(query)] == [wanted.id], query
    assert {c.id for c in Citizen.matching("pham hoa")} == {wanted.id, other.id}
    # Punctuation separates words: no LIKE or FTS wildcard reaches the database.
    assert {c.id for c in Citizen.matching("%")} == {wanted.id, other.id}
    assert [c.id for c in Citizen.matching("091%")] == [wanted.id]
    assert [c.id for c in Citizen.matching("pham_thi")] == [wanted.id]


def test_postgres_search_matches_what_the_whole_search_text_index_matched(app, station):
    """Migration 0009 moved codes out of the GIN index: every query still finds exactly the same people."""
    from peewee import SQL
    from peewee import NodeList
    from peewee import fn

    from models.base import is_postgres

    if not is_postgres():
        pytest.skip("PostgreSQL's index")
    wards = wards_of(n=2)
    people = [
        make_citizen(wards[0], full_name="Nguyễn Văn An", phone="0912345678", permanent_address="Số 12, thôn 3"),
        make_citizen(wards[1], full_name="Lê Thị Bình", phone="0912000111", insurance_number="HS4222284174483"),
        make_citizen(
            wards[0],
            full_name="Trần An Bình",
            national_id="022090000123",
            date_of_birth=datetime.date(1990, 1, 1),
            gender="M",
        ),
    ]
    queries = ["an", "binh", "09120", "912", "hs4", "12", "3", "0220", people[0].health_code[:5], "an 0912", "thon 3"]
    for query in queries:
        terms = " & ".join(f"{t}:*" for t in query.split())
        whole = NodeList((fn.to_tsvector("simple", Citizen.search_text), SQL("@@"), fn.to_tsquery("simple", terms)))
        before = {c.id for c in Citizen.select().where(whole)}
        assert {c.id for c in Citizen.matching(query)} == before, query
    words = Citizen.select(Citizen._search_words().alias("words")).where(Citizen.id == people[1].id).scalar()
    assert "0912000111" not in words and "hs4222284174483" not in words and "binh" in words
