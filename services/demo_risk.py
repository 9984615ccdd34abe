"""Deterministic demo risk declarations and cases for existing demo citizens, inserted in bulk."""

import datetime
import json
import random

from peewee import fn

from models.base import db
from models.base import is_postgres
from models.base import utcnow
from models.citizens import Citizen
from models.risk import CaseEvent
from models.risk import CaseStatus
from models.risk import Checklist
from models.risk import Declaration
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import person_key
from models.risk import responsible_unit

CHUNK = 1000
# Answer patterns, from no symptoms to a confirmed contact with fever.
PATTERNS = (
    {},
    {"cough": "yes"},
    {"cough": "yes", "fever": "yes"},
    {"outbreak_travel": "yes", "cough": "yes"},
    {"close_contact": "suspected", "fever": "yes"},
    {"breathing": "yes", "taste_smell": "yes", "cough": "yes"},
    {"close_contact": "confirmed", "fever": "yes"},
)
NONE = {"fever": "no", "cough": "no", "breathing": "no", "taste_smell": "no", "close_contact": "none",
        "outbreak_travel": "no"}  # fmt: skip


def _next_id(model):
    return (model.select(fn.MAX(model.id)).scalar() or 0) + 1


def _reset_sequence(model):
    if is_postgres():
        table = model._meta.table_name
        db.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


def generate(count, seed=1, now=None):
    """Create count cases, each with one declaration, for existing citizens; return the number created.

    Citizens are taken in a seeded order; a citizen who comes round again has the earlier case closed,
    so that each person keeps at most one open case.
    """
    checklist = Checklist.offered().first()
    version = checklist.current_version() if checklist else None
    citizens = [row for row in Citizen.select(Citizen.id, Citizen.full_name, Citizen.date_of_birth, Citizen.phone,
                                              Citizen.ward).order_by(Citizen.id).tuples()]  # fmt: skip
    if version is None or not citizens or count <= 0:
        return 0
    rng = random.Random(seed)
    rng.shuffle(citizens)
    now = now or utcnow()
    assessed = []
    for pattern in PATTERNS:
        answers = {**NONE, **pattern}
        score, level, _ = version.assess(answers, now.date())
        assessed.append((json.dumps(answers, sort_keys=True), score, level))
    units = {}
    case_id, declaration_id = _next_id(RiskCase), _next_id(Declaration)
    rounds = (count - 1) // len(citizens)
    cases, declarations, events = [], [], []
    with db.atomic():
        for i in range(count):
            citizen_id, name, born, phone, ward = citizens[i % len(citizens)]
            if ward not in units:
                unit = responsible_unit(ward)
                units[ward] = unit.id if unit else None
            answers, score, level = assessed[rng.randrange(len(assessed))]
            opened = now - datetime.timedelta(minutes=rng.randrange(60 * 24 * 30))
            closed = i // len(citizens) < rounds
            status = CaseStatus.CLEARED if closed else rng.choice(CaseStatus.OPEN)
            cases.append(
                {
                    "id": case_id,
                    "number": f"CA-D{case_id:07d}",
                    "person_key": person_key(citizen_id, name, born, ward),
                    "citizen": citizen_id,
                    "full_name": name,
                    "date_of_birth": born,
                    "phone": phone or "0900000000",
                    "ward": ward,
                    "unit": units[ward],
                    "disease": checklist.disease_id,
                    "risk_level": level,
                    "risk_rank": RiskLevel.RANK[level],
                    "status": status,
                    "opened_at": opened,
                    "touched_at": opened + datetime.timedelta(hours=rng.randrange(48)),
                    "closed_at": opened + datetime.timedelta(days=3) if closed else None,
                }
            )
            declarations.append(
                {
                    "id": declaration_id,
                    "number": f"KB-D{declaration_id:07d}",
                    "case": case_id,
                    "version": version.id,
                    "citizen": citizen_id,
                    "full_name": name,
                    "date_of_birth": born,
                    "phone": phone or "0900000000",
                    "ward": ward,
                    "answers": answers,
                    "score": score,
                    "risk_level": level,
                    "declared_at": opened,
                }
            )
            events.append(
                {"case": case_id, "at": opened, "kind": CaseEvent.DECLARED, "declaration": declaration_id, "note": ""}
            )
            case_id += 1
            declaration_id += 1
            if len(cases) >= CHUNK:
                _flush(cases, declarations, events)
        _flush(cases, declarations, events)
        _reset_sequence(RiskCase)
        _reset_sequence(Declaration)
    return count


def _flush(cases, declarations, events):
    if cases:
        RiskCase.insert_many(cases).execute()
        Declaration.insert_many(declarations).execute()
        CaseEvent.insert_many(events).execute()
    cases.clear()
    declarations.clear()
    events.clear()
