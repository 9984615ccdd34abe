"""Checklists, scoring, routing, case transitions, assignment and duplicates, in the domain."""

import datetime
import itertools

import pytest

from migrations.m0004_risk_declarations import DEFAULT_CHECKLIST
from migrations.m0004_risk_declarations import seed_defaults
from models.accounts import Role
from models.risk import CaseEvent
from models.risk import CaseStatus
from models.risk import Checklist
from models.risk import ChecklistVersion
from models.risk import Declaration
from models.risk import Disease
from models.risk import Question
from models.risk import QuestionKind
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import declare
from models.risk import notification_address
from models.risk import responsible_unit
from models.units import UnitKind
from models.validation import FieldError
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of

NOW = datetime.datetime(2026, 11, 1, 8, 0, 0)
NO_SYMPTOMS = {"fever": "no", "cough": "no", "breathing": "no", "taste_smell": "no", "close_contact": "none",
               "outbreak_travel": "no"}  # fmt: skip


@pytest.fixture
def checklist(app):
    """The default checklist (PostgreSQL tests start from empty tables, so it is seeded again)."""
    seed_defaults()
    return Checklist.get(Checklist.name == DEFAULT_CHECKLIST)


@pytest.fixture
def version(checklist):
    return checklist.current_version()


@pytest.fixture
def province(app):
    """Department > CDC (every commune) and regional centre > two commune stations; one citizen per commune."""
    wards = wards_of(n=3)
    department = make_unit(UnitKind.DEPARTMENT, wards=(), email="syt@example.vn")
    cdc = make_unit(UnitKind.CDC, wards=wards, parent=department, email="cdc@example.vn")
    centre = make_unit(UnitKind.REGIONAL_CENTRE, wards=(), parent=department, email=None)
    station_a = make_unit(UnitKind.COMMUNE_STATION, wards=[wards[0]], parent=centre, email="tyt-a@example.vn")
    station_b = make_unit(UnitKind.COMMUNE_STATION, wards=[wards[1]], parent=centre, email=None)
    return {
        "wards": wards,
        "department": department,
        "cdc": cdc,
        "centre": centre,
        "a": station_a,
        "b": station_b,
        "citizen_a": make_citizen(
            wards[0], full_name="Trần Văn Bình", phone="0912000001", date_of_birth=datetime.date(1980, 1, 2)
        ),  # fmt: skip
        "citizen_b": make_citizen(
            wards[1], full_name="Lê Thị Cúc", phone="0912000002", date_of_birth=datetime.date(1975, 3, 4)
        ),  # fmt: skip
    }


def person_of(citizen):
    return {
        "citizen_id": citizen.id,
        "full_name": citizen.full_name,
        "date_of_birth": citizen.date_of_birth,
        "phone": citizen.phone,
        "ward": citizen.ward_id,
    }


def open_case(version, citizen, answers=None, now=NOW):
    _declaration, case, _opened = declare(version, person_of(citizen), answers or dict(NO_SYMPTOMS), now)
    return case


# Scoring and versions
def test_the_default_checklist_is_published_with_the_usual_questions(version):
    codes = [q.code for q in version.ordered_questions()]
    for code in ("fever", "cough", "breathing", "taste_smell", "close_contact", "outbreak_travel"):
        assert code in codes
    assert version.is_published and version.number == 1
    assert Disease.get(Disease.code == "DENGUE").name == "Sốt xuất huyết Dengue"


@pytest.mark.parametrize(
    ("changes", "score", "level"),
    [
        ({}, 0, RiskLevel.LOW),
        ({"cough": "yes"}, 1, RiskLevel.LOW),
        ({"cough": "yes", "fever": "yes"}, 3, RiskLevel.MEDIUM),
        ({"temperature": "38.2", "cough": "yes"}, 3, RiskLevel.MEDIUM),
        ({"temperature": "37,4", "cough": "yes"}, 1, RiskLevel.LOW),
        ({"breathing": "yes", "taste_smell": "yes", "cough": "yes"}, 6, RiskLevel.HIGH),
        ({"conditions": ["diabetes", "heart", "lung"]}, 3, RiskLevel.MEDIUM),
        ({"outbreak_travel": "yes", "return_date": "25/10/2026"}, 3, RiskLevel.MEDIUM),
        ({"outbreak_travel": "yes", "return_date": "01/09/2026"}, 2, RiskLevel.LOW),
        # A confirmed contact alone scores 4 (medium); with fever, the forcing rule makes it high.
        ({"close_contact": "confirmed"}, 4, RiskLevel.MEDIUM),
        ({"close_contact": "confirmed", "fever": "yes"}, 6, RiskLevel.HIGH),
        ({"close_contact": "suspected", "fever": "yes"}, 4, RiskLevel.MEDIUM),
    ],
)
def test_answers_are_scored_by_weight_and_rule(version, changes, score, level):
    answers = {q.code: q.parse_answer({**NO_SYMPTOMS, **changes}.get(q.code)) for q in version.ordered_questions()}
    assert version.assess(answers, NOW.date())[:2] == (score, level)


def test_a_forcing_rule_makes_high_risk_below_the_threshold(checklist):
    draft = checklist.current_version().new_draft()
    ChecklistVersion.update(high_from=50).where(ChecklistVersion.id == draft.id).execute()
    draft = ChecklistVersion.get_by_id(draft.id)
    answers = {**NO_SYMPTOMS, "close_contact": "confirmed", "fever": "yes"}
    assert draft.assess(answers, NOW.date())[1] == RiskLevel.HIGH
    answers["fever"] = "no"
    assert draft.assess(answers, NOW.date())[1] == RiskLevel.MEDIUM


def test_a_published_version_never_changes_and_declarations_keep_theirs(checklist, province):
    v1 = checklist.current_version()
    declaration, case, _ = declare(v1, person_of(province["citizen_a"]), {**NO_SYMPTOMS, "cough": "yes"}, NOW)
    question = Question.get((Question.version == v1.id) & (Question.code == "cough"))
    question.weight = 9
    with pytest.raises(FieldError) as refused:
        question.save()
    assert refused.value.field == "version"
    with pytest.raises(FieldError):
        question.delete_instance()
    with pytest.raises(FieldError):
        v1.high_from = 20
        v1.save()

    v2 = v1.new_draft()
    assert not v2.is_published and v2.number == 2
    assert checklist.current_version().id == v1.id  # drafts are not answered
    cough = Question.get((Question.version == v2.id) & (Question.code == "cough"))
    cough.weight = 9
    cough.save()
    v2.publish(now=NOW)
    assert checklist.current_version().id == v2.id

    later, _case, _ = declare(v2, person_of(province["citizen_b"]), {**NO_SYMPTOMS, "cough": "yes"}, NOW)
    assert (later.score, later.risk_level) == (9, RiskLevel.HIGH)
    earlier = Declaration.get_by_id(declaration.id)
    assert earlier.version_id == v1.id and (earlier.score, earlier.risk_level) == (1, RiskLevel.LOW)
    readable = {q.code: answer for q, answer in earlier.readable_answers()}
    assert readable["cough"] in ("Có", "Yes") and readable["close_contact"] == "Không"


@pytest.mark.parametrize(
    ("field", "value", "error_field"),
    [
        ("code", "Bad Code", "code"),
        ("options", "only | one | 1", "options"),
        ("options", "a | A | x\nb | B | 1", "options"),
        ("rule", "about 38", "rule"),
    ],
)
def test_a_question_definition_is_checked(checklist, field, value, error_field):
    draft = checklist.current_version().new_draft()
    kind = QuestionKind.SINGLE if field == "options" else QuestionKind.NUMBER
    question = Question(version=draft, code="q1", text="Câu hỏi", kind=kind, options="a | A | 1\nb | B | 0")
    setattr(question, field, value)
    with pytest.raises(FieldError) as refused:
        question.save()
    assert refused.value.field == error_field
    assert not Question.select().where(Question.version == draft.id, Question.code == "q1").exists()


def test_thresholds_and_rules_are_checked(checklist):
    draft = checklist.current_version().new_draft()
    draft.medium_from, draft.high_from = 6, 3
    with pytest.raises(FieldError):
        draft.save()
    draft = ChecklistVersion.get_by_id(draft.id)
    draft.force_high = "no_such_question & fever"
    draft.save()
    with pytest.raises(FieldError) as refused:
        draft.publish(now=NOW)
    assert refused.value.field == "force_high"
    assert not ChecklistVersion.get_by_id(draft.id).is_published


@pytest.mark.parametrize(
    ("code", "raw", "message_part"),
    [
        ("fever", "", "answer"),
        ("fever", "maybe", "yes or no"),
        ("close_contact", "friend", "options"),
        ("temperature", "hot", "number"),
        ("temperature", "nan", "number"),
        ("return_date", "31/02/2026", "dd/mm/yyyy"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(version, code, raw, message_part):
    question = next(q for q in version.ordered_questions() if q.code == code)
    with pytest.raises(FieldError) as refused:
        question.parse_answer(raw)
    assert refused.value.field == code
    assert message_part in str(refused.value.message)


# Routing
def test_a_case_goes_to_the_commune_station_of_the_residence(version, province):
    case = open_case(version, province["citizen_b"])
    assert case.unit_id == province["b"].id
    assert responsible_unit(province["wards"][0]).id == province["a"].id
    # Station B has no e-mail and neither has the regional centre: the department's is used.
    assert notification_address(province["b"]) == "syt@example.vn"
    assert notification_address(province["a"]) == "tyt-a@example.vn"


def test_a_commune_without_a_station_goes_to_the_unit_covering_it(version, province):
    ward = province["wards"][2]  # only the CDC covers it
    citizen = make_citizen(ward, full_name="Phạm Văn Dũng", phone="0912000003")
    assert open_case(version, citizen).unit_id == province["cdc"].id


# Transitions
ALLOWED = sorted((old, new) for old, targets in CaseStatus.TRANSITIONS.items() for new in targets)
REFUSED = sorted(
    (old, new)
    for old, new in itertools.product(CaseStatus.ALL, CaseStatus.ALL)
    if new not in CaseStatus.TRANSITIONS[old]
)


def force_status(case, status):
    RiskCase.update(status=status).where(RiskCase.id == case.id).execute()
    return RiskCase.get_by_id(case.id)


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_every_allowed_transition_is_made_and_recorded(version, province, old, new):
    nurse = make_staff(province["a"], full_name="Y tá Hoa")
    case = force_status(open_case(version, province["citizen_a"]), old)
    later = NOW + datetime.timedelta(hours=3)
    case.move_to(new, by=nurse.id, note="Đã gọi điện", now=later)
    stored = RiskCase.get_by_id(case.id)
    assert stored.status == new
    assert stored.touched_at == later
    assert (stored.closed_at == later) == (new in CaseStatus.CLOSED)
    event = CaseEvent.select().where(CaseEvent.case == case.id, CaseEvent.kind == CaseEvent.STATUS).get()
    assert (event.from_status, event.to_status, event.actor_id, event.at, event.note) == (
        old,
        new,
        nurse.id,
        later,
        "Đã gọi điện",
    )


@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_every_other_transition_is_refused_and_changes_nothing(version, province, old, new):
    nurse = make_staff(province["a"])
    case = force_status(open_case(version, province["citizen_a"]), old)
    with pytest.raises(FieldError) as refused:
        case.move_to(new, by=nurse.id, now=NOW + datetime.timedelta(hours=1))
    assert refused.value.field == "status"
    stored = RiskCase.get_by_id(case.id)
    assert (stored.status, stored.touched_at) == (old, NOW)
    assert not CaseEvent.select().where(CaseEvent.case == case.id, CaseEvent.kind == CaseEvent.STATUS).exists()


def test_a_stale_copy_cannot_move_a_case_a_colleague_moved(version, province):
    nurse = make_staff(province["a"])
    case = open_case(version, province["citizen_a"])
    stale = RiskCase.get_by_id(case.id)
    case.move_to(CaseStatus.VERIFYING, by=nurse.id, now=NOW)
    stale.status = CaseStatus.NEW  # what the colleague's page still shows
    with pytest.raises(FieldError):
        stale.move_to(CaseStatus.VERIFYING, by=nurse.id, now=NOW)
    assert CaseEvent.select().where(CaseEvent.case == case.id, CaseEvent.kind == CaseEvent.STATUS).count() == 1


# Assignment
def test_a_case_is_assigned_only_to_staff_who_can_see_it(version, province):
    case = open_case(version, province["citizen_a"])
    owner = make_staff(province["a"])  # station of the commune
    centre = make_staff(province["centre"])  # the station's parent: sees the commune
    cdc = make_staff(province["cdc"], role=Role.CDC_STAFF)
    outsider = make_staff(province["b"])  # another commune's station
    leader = make_staff(province["department"], role=Role.DEPARTMENT_LEADER)  # sees all, may not triage
    clerk = make_staff(province["a"], role=Role.DATA_CLERK)
    inactive = make_staff(province["a"], active=False)
    assignable = {s.id for s in RiskCase.assignable_staff(case.ward_id)}
    assert {owner.id, centre.id, cdc.id} <= assignable
    assert not {outsider.id, leader.id, clerk.id, inactive.id} & assignable
    for staff in (outsider, leader, clerk, inactive):
        with pytest.raises(FieldError) as refused:
            case.assign(staff, by=cdc.id, now=NOW)
        assert refused.value.field == "assignee"
    assert RiskCase.get_by_id(case.id).assignee_id is None
    case.assign(owner, by=cdc.id, note="Xác minh hôm nay", now=NOW)
    assert RiskCase.get_by_id(case.id).assignee_id == owner.id
    event = CaseEvent.get(CaseEvent.case == case.id, CaseEvent.kind == CaseEvent.ASSIGNED)
    assert (event.assignee_id, event.actor_id, event.note) == (owner.id, cdc.id, "Xác minh hôm nay")


# Duplicates
def test_a_new_declaration_joins_the_open_case_and_never_lowers_it(version, province):
    citizen = province["citizen_a"]
    first, case, opened = declare(version, person_of(citizen), {**NO_SYMPTOMS, "cough": "yes", "fever": "yes"}, NOW)
    assert opened and case.risk_level == RiskLevel.MEDIUM
    second, same, opened_again = declare(version, person_of(citizen), dict(NO_SYMPTOMS), NOW)
    assert not opened_again and same.id == case.id
    assert RiskCase.get_by_id(case.id).risk_level == RiskLevel.MEDIUM
    third, same, _ = declare(version, person_of(citizen), {**NO_SYMPTOMS, "close_contact": "confirmed",
                                                             "fever": "yes"}, NOW)  # fmt: skip
    assert same.id == case.id and RiskCase.get_by_id(case.id).risk_level == RiskLevel.HIGH
    assert RiskCase.select().count() == 1
    assert [d.id for d in Declaration.select().where(Declaration.case == case.id).order_by(Declaration.id)] == [
        first.id,
        second.id,
        third.id,
    ]


def test_a_closed_case_is_not_reopened_by_a_new_declaration(version, province):
    nurse = make_staff(province["a"])
    case = open_case(version, province["citizen_a"])
    case.move_to(CaseStatus.VERIFYING, by=nurse.id, now=NOW)
    case.move_to(CaseStatus.CLEARED, by=nurse.id, now=NOW)
    again = open_case(version, province["citizen_a"])
    assert again.id != case.id and again.status == CaseStatus.NEW


def test_people_without_a_record_are_matched_by_name_birth_date_and_commune(version, province):
    ward = province["wards"][1]
    person = {"citizen_id": None, "full_name": "Võ Thị Én", "date_of_birth": datetime.date(2001, 1, 1),
              "phone": "0987000001", "ward": ward}  # fmt: skip
    _d, first, _ = declare(version, person, dict(NO_SYMPTOMS), NOW)
    _d, second, _ = declare(version, {**person, "full_name": "vo thi en", "phone": "0987000002"}, NO_SYMPTOMS, NOW)
    _d, other, _ = declare(version, {**person, "date_of_birth": datetime.date(2001, 1, 2)}, NO_SYMPTOMS, NOW)
    assert first.id == second.id != other.id


def test_a_bad_answer_stores_nothing(version, province):
    with pytest.raises(FieldError):
        declare(version, person_of(province["citizen_a"]), {**NO_SYMPTOMS, "temperature": "hot"}, NOW)
    assert RiskCase.select().count() == Declaration.select().count() == CaseEvent.select().count() == 0


def test_the_database_refuses_a_second_open_case_for_the_same_person(version, province):
    from peewee import IntegrityError

    from models.base import db

    case = open_case(version, province["citizen_a"])
    with pytest.raises(IntegrityError), db.atomic():
        RiskCase.create(**{**{f.name: getattr(case, f.name) for f in RiskCase._meta.sorted_fields if f.name != "id"},
                           "number": "CA-OTHER"})  # fmt: skip
