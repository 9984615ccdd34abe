"""Demo data: deterministic, valid by the domain's own rules, searchable, and without shared passwords."""

import pytest

from models.accounts import Staff
from models.base import db
from models.base import is_postgres
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.citizens import Household
from models.records import Vaccination
from models.text import fold
from models.units import HealthUnit
from models.units import UnitWard
from models.validation import normalize_health_code
from models.validation import normalize_insurance_number
from models.validation import normalize_national_id
from models.validation import normalize_phone
from services import demo_data
from services.demo_data import DemoDataError
from services.demo_data import _ward_rows
from services.demo_data import build_people
from services.demo_data import generate
from services.passwords import verify_password


def _quiet(*args, **kwargs):
    pass


def test_demo_data_fills_one_province(app):
    result = generate(citizens=600, province_code=22, seed=7, echo=_quiet)
    assert result.citizens == Citizen.select().count() == 600
    assert Household.select().count() == result.households > 0
    assert FamilyRelation.select().count() == result.relations > 0
    assert Vaccination.select().count() > 0
    kinds = {unit.kind for unit in HealthUnit.select()}
    assert {"department", "cdc", "commune_station", "hospital"} <= kinds
    # Every commune station covers its wards; every citizen lives in a ward some station covers.
    assert Citizen.select().where(Citizen.ward.not_in(_covered_wards())).count() == 0


def _covered_wards():
    return UnitWard.select(UnitWard.ward)


def test_every_generated_citizen_passes_the_domain_rules(app):
    generate(citizens=400, province_code=22, seed=3, echo=_quiet)
    for citizen in Citizen.select():
        assert normalize_phone(citizen.phone) == citizen.phone
        assert normalize_health_code(citizen.health_code) == citizen.health_code
        if citizen.national_id:
            assert (
                normalize_national_id(citizen.national_id, citizen.date_of_birth, citizen.gender) == citizen.national_id
            )
        if citizen.insurance_number:
            assert normalize_insurance_number(citizen.insurance_number) == citizen.insurance_number
    assert Citizen.select(Citizen.health_code).distinct().count() == 400


def test_the_same_seed_gives_the_same_people(app):
    province = (22, "Quảng Ninh", "tỉnh")
    wards = _ward_rows(22)
    first = build_people(province, wards, 500, seed=11)
    assert build_people(province, wards, 500, seed=11) == first
    assert build_people(province, wards, 500, seed=12) != first
    assert len(first[1]) == 500


def test_accounts_have_personal_one_time_passwords(app):
    result = generate(citizens=50, province_code=22, seed=1, echo=_quiet)
    passwords = [account.password for account in result.accounts]
    assert len(passwords) == len(set(passwords)) == Staff.select().count()
    assert all(len(p) >= 12 for p in passwords)
    assert Staff.select().where(~Staff.must_change_password).count() == 0
    account = result.accounts[0]
    staff = Staff.get(Staff.username == account.username)
    assert verify_password(staff.password_hash, account.password)
    assert not verify_password(staff.password_hash, result.accounts[1].password)


def test_loading_twice_is_refused_and_leaves_the_data(app):
    generate(citizens=100, province_code=22, seed=1, echo=_quiet)
    before = Citizen.select().count()
    with pytest.raises(DemoDataError, match="already has demo units"):
        generate(citizens=100, province_code=22, seed=1, echo=_quiet)
    assert Citizen.select().count() == before


def test_an_unknown_province_is_refused(app):
    with pytest.raises(DemoDataError, match="no province with code 99"):
        generate(citizens=10, province_code=99, seed=1, echo=_quiet)


def test_the_command_prints_accounts_and_loads_only_into_an_empty_database(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo-data", "--citizens", "120", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "120 citizens" in result.output
    assert "Each password works once" in result.output
    again = runner.invoke(args=["demo-data", "--citizens", "120", "--if-empty"])
    assert again.exit_code == 0 and "nothing loaded" in again.output
    refused = runner.invoke(args=["demo-data", "--citizens", "120"])
    assert refused.exit_code == 1 and "already has demo units" in refused.output
    assert "Traceback" not in refused.output
    assert Citizen.select().count() == 120
    # One declaration per 10 citizens by default, each in a case someone can triage.
    from models.risk import Declaration
    from models.risk import RiskCase

    assert "12 risk declarations" in result.output
    assert Declaration.select().count() == 12 and RiskCase.select().count() >= 1


def test_the_command_makes_as_many_declarations_as_asked(app):
    from models.risk import Declaration

    result = app.test_cli_runner().invoke(args=["demo-data", "--citizens", "60", "--declarations", "25"])
    assert result.exit_code == 0, result.output
    assert Declaration.select().count() == 25


def test_generated_citizens_are_found_without_diacritics(app):
    generate(citizens=300, province_code=22, seed=5, echo=_quiet)
    someone = Citizen.select().order_by(Citizen.id.desc()).first()
    found = Citizen.matching(fold(someone.full_name)).where(Citizen.id == someone.id)
    assert found.count() == 1


def _schema():
    if is_postgres():
        indexes = db.execute_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        constraints = db.execute_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ).fetchall()
        return indexes + constraints
    query = (
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_stat%' ORDER BY 2"
    )
    return db.execute_sql(query).fetchall()


def test_a_bulk_load_rebuilds_the_schema_it_set_aside(app, monkeypatch):
    # Big loads drop indexes and search triggers and rebuild them; a low threshold takes that path here.
    monkeypatch.setattr(demo_data, "BULK_THRESHOLD", 100)
    monkeypatch.setattr(demo_data, "PEOPLE_PER_BATCH", 150)  # several batches of citizens to index
    before = _schema()
    generate(citizens=800, province_code=22, seed=4, echo=_quiet)
    assert _schema() == before
    first = Citizen.select().order_by(Citizen.id).first()
    someone = Citizen.select().order_by(Citizen.id.desc()).first()
    assert Citizen.matching(fold(first.full_name)).where(Citizen.id == first.id).count() == 1
    assert Citizen.matching(fold(someone.full_name)).where(Citizen.id == someone.id).count() == 1
    if not is_postgres():  # every citizen is in the search index, once
        assert db.execute_sql("SELECT count(*) FROM citizen_fts_docsize").fetchone()[0] == Citizen.select().count()
        # Merging, turned off for the load, is back to FTS5's default (no row means the default).
        assert db.execute_sql("SELECT v FROM citizen_fts_config WHERE k = 'automerge'").fetchall() in ([], [(4,)])
    # The search triggers are back: a new citizen is found at once.
    newcomer = Citizen.create(full_name="Đỗ Thị Hường", ward=someone.ward_id, phone="0987650000")
    assert Citizen.matching("do thi huong").where(Citizen.id == newcomer.id).count() == 1


def test_a_failure_while_building_records_leaves_nothing_and_no_child(app, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(demo_data, "BULK_THRESHOLD", 100)

    def broken(self, size=demo_data.PEOPLE_PER_BATCH):
        raise RuntimeError("disk full")
        yield  # a generator, as the real one

    monkeypatch.setattr(demo_data._RecordsMaker, "batches", broken)
    before = (HealthUnit.select().count(), Citizen.select().count(), Household.select().count())
    with pytest.raises(DemoDataError, match="disk full"):
        generate(citizens=400, province_code=22, seed=5, echo=_quiet)
    assert (HealthUnit.select().count(), Citizen.select().count(), Household.select().count()) == before
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]
