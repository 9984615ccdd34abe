"""The report registry: each report against figures worked out by hand, scoping and filters."""

import ast
import datetime
from pathlib import Path

import pytest

from models.accounts import Scope
from models.audit import Action
from reports import built_in
from reports import get_report
from reports.base import Filters
from tests.reports_world import audit_at
from tests.reports_world import build_world

world_fixture = pytest.fixture(name="world")(build_world)
REPORTS_DIR = Path(__file__).resolve().parent.parent / "reports"


def rows_of(frame, *keys):
    """The DataFrame as a set of tuples of the given columns."""
    return {tuple(record) for record in frame[list(keys)].itertuples(index=False, name=None)}


def test_reports_never_import_flask():
    for path in REPORTS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0].startswith("flask")], f"{path.name} imports {names}"


def test_the_registry_lists_the_named_reports():
    names = [r.name for r in built_in()]
    assert {"coverage", "completeness", "activity"} <= set(names)


def test_coverage_counts_people_per_commune_vaccine_and_dose(world):
    w0, w1, w2 = world["wards"]
    frame = get_report("coverage").run(Scope.everything(), Filters())
    # w0 has 3 residents, w1 2, w2 1.
    assert rows_of(frame, "ward_code", "vaccine", "dose_number", "people", "population", "coverage") == {
        (w0, "Vắc xin sởi", 1, 2, 3, 66.67),
        (w0, "Vắc xin sởi", 2, 1, 3, 33.33),
        (w1, "Vắc xin sởi", 1, 1, 2, 50.0),
        (w1, "Vắc xin COVID-19", 1, 1, 2, 50.0),
        (w2, "Vắc xin sởi", 1, 1, 1, 100.0),
    }


def test_coverage_filters_period_vaccine_and_disease(world):
    w0, w1, w2 = world["wards"]
    report = get_report("coverage")
    period = Filters(date_from=datetime.date(2024, 1, 1), date_to=datetime.date(2024, 2, 29))
    assert rows_of(report.run(Scope.everything(), period), "ward_code", "vaccine", "dose_number", "people") == {
        (w0, "Vắc xin sởi", 1, 2),
        (w1, "Vắc xin COVID-19", 1, 1),
    }
    measles = Filters(vaccine=world["vaccines"]["measles"].id, ward=w1)
    assert rows_of(report.run(Scope.everything(), measles), "ward_code", "people") == {(w1, 1)}
    covid = Filters(disease="COVID-19")
    assert rows_of(report.run(Scope.everything(), covid), "ward_code", "people") == {(w1, 1)}


def test_a_commune_users_coverage_holds_only_their_commune(world):
    w0, w1, w2 = world["wards"]
    station = world["staff"]["station"]
    frame = get_report("coverage").run(station.scope(), Filters())
    assert set(frame["ward_code"]) == {w0}
    # Asking for another commune gives nothing rather than that commune.
    assert get_report("coverage").run(station.scope(), Filters(ward=w2)).empty


def test_a_unit_filter_narrows_to_its_jurisdiction(world):
    w0, w1, w2 = world["wards"]
    centre = world["units"]["centre"]
    frame = get_report("coverage").run(Scope.everything(), Filters(unit=centre.id))
    # The centre covers w1 and, through its station, w0.
    assert set(frame["ward_code"]) == {w0, w1}


def test_completeness_counts_the_gaps_per_commune(world):
    w0, w1, w2 = world["wards"]
    frame = get_report("completeness").run(Scope.everything(), Filters())
    columns = (
        "ward_code",
        "population",
        "missing_phone",
        "missing_health_code",
        "missing_insurance",
        "missing_national_id",
        "complete",
        "complete_share",
    )
    assert rows_of(frame, *columns) == {
        (w0, 3, 1, 1, 1, 1, 1, 33.33),
        (w1, 2, 1, 0, 0, 0, 1, 50.0),
        (w2, 1, 0, 0, 0, 0, 1, 100.0),
    }
    station_frame = get_report("completeness").run(world["staff"]["station"].scope(), Filters())
    assert list(station_frame["ward_code"]) == [w0]


def test_activity_counts_views_changes_and_exports_per_account(world):
    staff = world["staff"]
    inside = datetime.datetime(2024, 6, 10, 3, 0)
    # 23:30 on 30 June UTC is already 1 July in Vietnam: outside a June period.
    late = datetime.datetime(2024, 6, 30, 23, 30)
    for action in (Action.VIEW, Action.VIEW, Action.UPDATE, Action.CREATE, Action.EXPORT, Action.SIGN_IN):
        audit_at(inside, action, staff["station"])
    audit_at(late, Action.VIEW, staff["station"])
    audit_at(inside, Action.SEARCH, staff["leader"])
    audit_at(inside, Action.SIGN_IN, staff["far"])
    june = Filters(date_from=datetime.date(2024, 6, 1), date_to=datetime.date(2024, 6, 30))
    frame = get_report("activity").run(Scope.everything(), june)
    assert rows_of(frame, "account", "unit_code", "views", "searches", "changes", "exports", "total") == {
        ("station", "TYT", 2, 0, 2, 1, 5),
        ("leader", "SYT", 0, 1, 0, 0, 1),
    }
    everything = get_report("activity").run(Scope.everything(), Filters())
    assert rows_of(everything, "account", "views") >= {("station", 3)}


def test_activity_in_a_scope_covers_the_units_inside_it(world):
    staff = world["staff"]
    now = datetime.datetime(2024, 6, 10, 3, 0)
    audit_at(now, Action.VIEW, staff["station"])
    audit_at(now, Action.VIEW, staff["centre"])
    audit_at(now, Action.VIEW, staff["far"])
    frame = get_report("activity").run(staff["centre"].scope(), Filters())
    assert set(frame["account"]) == {"station", "centre"}
    by_unit = get_report("activity").run(Scope.everything(), Filters(unit=world["units"]["centre"].id))
    assert set(by_unit["account"]) == {"station", "centre"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"date_from": "31/02/2024"}, "date_from"),
        ({"ward": "abc"}, "ward"),
        ({"date_from": "02/03/2024", "date_to": "01/03/2024"}, "date_to"),
    ],
)
def test_bad_filters_name_the_field(raw, field):
    from models.validation import FieldError

    with pytest.raises(FieldError) as caught:
        Filters.from_mapping(raw)
    assert caught.value.field == field


def test_filters_read_vietnamese_dates():
    filters = Filters.from_mapping({"date_from": "01/02/2024", "ward": "6652", "ignored": "x"})
    assert filters == Filters(date_from=datetime.date(2024, 2, 1), ward=6652)
    assert filters.as_strings() == {"date_from": "2024-02-01", "ward": "6652"}


def test_declarations_per_day_level_and_status_with_the_median_wait(world):
    from migrations.m0004_risk_declarations import DEFAULT_CHECKLIST
    from migrations.m0004_risk_declarations import seed_defaults
    from models.risk import CaseStatus
    from models.risk import Checklist
    from models.risk import declare
    from tests.test_risk_model import NO_SYMPTOMS
    from tests.test_risk_model import person_of

    seed_defaults()
    version = Checklist.get(Checklist.name == DEFAULT_CHECKLIST).current_version()
    people, nurse = world["people"], world["staff"]["station"]
    morning = datetime.datetime(2026, 11, 1, 1, 0)  # 08:00 in Vietnam, 1 November
    cases = {}
    for key, when in (
        ("an", morning),
        ("chi", morning + datetime.timedelta(hours=1)),
        ("phuong", morning),
        ("dung", datetime.datetime(2026, 11, 1, 20, 0)),  # 03:00 on 2 November in Vietnam
    ):
        declaration, case, _ = declare(version, person_of(people[key]), dict(NO_SYMPTOMS), when)
        assert declaration.risk_level == "low"
        cases[key] = case
    # Staff act on An's case 2 hours after, on Chi's 4 hours after: a median of 3 hours.
    cases["an"].move_to(CaseStatus.VERIFYING, by=nurse.id, now=morning + datetime.timedelta(hours=2))
    cases["chi"].move_to(CaseStatus.VERIFYING, by=nurse.id, now=morning + datetime.timedelta(hours=5))
    report = get_report("declarations")
    frame = report.run(Scope.everything(), Filters())
    columns = ("day", "risk_level", "status", "declarations", "acted_on", "median_hours")
    found = [tuple(None if v != v else v for v in row) for row in frame[list(columns)].itertuples(index=False)]
    assert found == [
        ("01/11/2026", "Low", "New", 1, 0, None),
        ("01/11/2026", "Low", "Verifying", 2, 2, 3.0),
        ("02/11/2026", "Low", "New", 1, 0, None),
    ]
    station = report.run(nurse.scope(), Filters())
    assert list(station["declarations"]) == [2]
    first_day = report.run(Scope.everything(), Filters(date_to=datetime.date(2026, 11, 1)))
    assert sum(first_day["declarations"]) == 3


def test_the_builder_counts_declarations_by_level_scoped_by_the_persons_commune(world):
    from migrations.m0004_risk_declarations import DEFAULT_CHECKLIST
    from migrations.m0004_risk_declarations import seed_defaults
    from models.risk import Checklist
    from models.risk import declare
    from reports import builder
    from tests.test_risk_model import NO_SYMPTOMS
    from tests.test_risk_model import person_of

    seed_defaults()
    version = Checklist.get(Checklist.name == DEFAULT_CHECKLIST).current_version()
    people, nurse = world["people"], world["staff"]["station"]
    morning = datetime.datetime(2026, 11, 1, 1, 0)
    for key, hours in (("an", 0), ("an", 30), ("chi", 1), ("dung", 2)):
        declare(version, person_of(people[key]), dict(NO_SYMPTOMS), morning + datetime.timedelta(hours=hours))
    definition = builder.validate(
        "declarations-by-level",
        "Khai báo theo mức",
        "declarations",
        ["commune", "risk_level"],
        ["count", "distinct"],
        {},
    )
    everything = builder.run_definition(definition, Scope.everything(), Filters())
    # An declared twice (the second attaches to the same case): 4 declarations of 3 people.
    assert sum(everything["count"]) == 4 and sum(everything["distinct"]) == 3
    assert set(everything["risk_level"]) == {"Low"}
    by_ward = {row.ward_code: (row.count, row.distinct) for row in everything.itertuples()}
    station_wards = set(nurse.scope().ward_codes)
    mine = builder.run_definition(definition, nurse.scope(), Filters())
    assert {row.ward_code: (row.count, row.distinct) for row in mine.itertuples()} == {
        ward: counts for ward, counts in by_ward.items() if ward in station_wards
    }
    assert len(mine) < len(everything)
    first_day = builder.run_definition(definition, Scope.everything(), Filters(date_to=datetime.date(2026, 11, 1)))
    assert sum(first_day["count"]) == 3
