"""Duplicate persons: find likely pairs, queue them for review, merge one record into another.

Two records are likely one person when they have the same ID number, or the same folded full
name and date of birth and either the same phone or the same commune.
"""

import itertools

from peewee import fn

from models.audit import Action
from models.audit import AuditEvent
from models.base import any_of
from models.base import db
from models.base import pairs_in
from models.base import utcnow
from models.citizens import FORM_FIELDS
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.corrections import CorrectionRequest
from models.duplicates import MERGED
from models.duplicates import NOT_DUPLICATE
from models.duplicates import OPEN
from models.duplicates import CitizenAlias
from models.duplicates import DuplicateCandidate
from models.lookup import CitizenSession
from models.lookup import LookupChallenge
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.risk import CaseEvent
from models.risk import Declaration
from models.risk import RiskCase
from models.risk import person_key
from models.text import fold_name
from models.validation import FieldError
from services import clock

# The fields a merge lets staff choose: those of the paper form.
MERGE_FIELDS = FORM_FIELDS
ALIAS_FIELDS = ("health_code", "national_id", "insurance_number")
SCAN_BATCH = 1000
_COLUMNS = (Citizen.id, Citizen.full_name, Citizen.date_of_birth, Citizen.phone, Citizen.ward, Citizen.national_id)


# Detection


def _keys(row):
    """(reason, key) of every way a row can match another; row is (id, name, dob, phone, ward, national_id)."""
    _id, name, born, phone, ward, national_id = row
    if national_id:
        yield "national_id", national_id
    if born is not None:
        name = fold_name(name)
        if phone:
            yield "name_dob_phone", (name, born, phone)
        yield "name_dob_ward", (name, born, ward)


def _pairs_among(rows, new_ids=None):
    """{(a, b): reason} for rows sharing a key; with new_ids, only pairs with at least one new id."""
    groups = {}
    for row in rows:
        for reason, key in _keys(row):
            groups.setdefault((reason, key), set()).add(row[0])
    # Only keys shared by two records or more make pairs; an import's batch has thousands of keys
    # and few of them shared. The sort is stable: within a reason, groups keep their order.
    shared = [item for item in groups.items() if len(item[1]) > 1]
    found = {}
    for (reason, _key), ids in sorted(shared, key=lambda item: _REASON_ORDER[item[0][0]]):
        for a, b in itertools.combinations(sorted(ids), 2):
            if new_ids is None or a in new_ids or b in new_ids:
                found.setdefault((a, b), reason)
    return found


_REASON_ORDER = {"national_id": 0, "name_dob_phone": 1, "name_dob_ward": 2}


def queue(pairs):
    """Queue {(a, b): reason} pairs never seen before; return how many were queued."""
    if not pairs:
        return 0
    known = DuplicateCandidate.select(DuplicateCandidate.citizen_a_id, DuplicateCandidate.citizen_b_id).where(
        pairs_in(DuplicateCandidate.citizen_a_id, DuplicateCandidate.citizen_b_id, sorted(pairs))
        & (DuplicateCandidate.status != MERGED)
    )
    seen = set(known.tuples())
    now = utcnow()
    rows = [
        {"citizen_a_id": a, "citizen_b_id": b, "reason": reason, "found_at": now, "status": OPEN}
        for (a, b), reason in sorted(pairs.items())
        if (a, b) not in seen
    ]
    for start in range(0, len(rows), 500):
        DuplicateCandidate.insert_many(rows[start : start + 500]).on_conflict_ignore().execute()
    return len(rows)


def find_duplicates_of(citizen_ids, rows=None):
    """Queue the likely duplicates of these (new) citizens; a few queries whatever their number.

    rows: the citizens as (id, full name, birth date, phone, ward, national ID, health code) when
    the caller has them in hand (an import), saving their reading back.
    """
    citizen_ids = sorted(set(citizen_ids))
    if not citizen_ids:
        return 0
    if rows is None:
        rows = Citizen.select(*_COLUMNS, Citizen.health_code).where(any_of(Citizen.id, citizen_ids)).tuples()
    new_with_codes = list(rows)
    new = [row[:-1] for row in new_with_codes]
    national_ids = sorted({r[5] for r in new if r[5]})
    born = [r for r in new if r[2] is not None]
    # (phone, birth date), phone first: SQLite then looks the pairs up on the phone's index; with the
    # birth date first it read everyone born on each date (0.3 s a batch at a million citizens).
    by_phone = sorted({(r[3], r[2]) for r in born if r[3]})
    by_ward = sorted({(r[2], r[4]) for r in born})
    # UNION ALL: one round trip, each branch on its own index; the dict below drops repeats. The new
    # citizens themselves are left out of the branches: each would match itself, and they are in hand.
    others = ~any_of(Citizen.id, citizen_ids)
    query = (
        Citizen.select(*_COLUMNS)
        .where(any_of(Citizen.national_id, national_ids) & others)
        .union_all(Citizen.select(*_COLUMNS).where(pairs_in(Citizen.phone, Citizen.date_of_birth, by_phone) & others))
        .union_all(Citizen.select(*_COLUMNS).where(pairs_in(Citizen.date_of_birth, Citizen.ward, by_ward) & others))
    )
    rows = {row[0]: row for row in query.tuples()}
    rows.update((row[0], row) for row in new)
    pairs = _pairs_among(rows.values(), new_ids=set(citizen_ids))
    for pair in _alias_pairs(new_with_codes):
        pairs.setdefault(pair, "alias")
    return queue(pairs)


def queue_pairs_among(citizen_ids):
    """Queue the likely pairs among these citizens only (a bulk import's candidates); return how many."""
    if not citizen_ids:
        return 0
    # One query: a pair may be any two of them. They are few (citizens sharing a key with another).
    rows = Citizen.select(*_COLUMNS).where(any_of(Citizen.id, citizen_ids)).tuples()
    return queue(_pairs_among(rows))


def _alias_pairs(rows):
    """Pairs of a new citizen and the record whose merged-away code or ID number it carries."""
    owners = {}
    for row in rows:
        citizen_id, national_id, health_code = row[0], row[5], row[6]
        for kind, value in (("health_code", health_code), ("national_id", national_id)):
            if value:
                owners.setdefault((kind, value), []).append(citizen_id)
    if not owners or not CitizenAlias.any_recorded():
        return []
    query = CitizenAlias.select(CitizenAlias.kind, CitizenAlias.value, CitizenAlias.citizen).where(
        pairs_in(CitizenAlias.kind, CitizenAlias.value, sorted(owners))
    )
    return [
        DuplicateCandidate.pair(survivor_id, citizen_id)
        for kind, value, survivor_id in query.tuples()
        for citizen_id in owners[(kind, value)]
        if citizen_id != survivor_id
    ]


def scan(batch=SCAN_BATCH, echo=None):
    """Queue every likely pair in the whole table (GROUP BY per rule); return how many were queued."""
    queued = 0
    for label, members in _scan_groups():
        pending = {}
        for _key, rows in itertools.groupby(members, key=lambda row: row[-1]):
            pending.update(_pairs_among([row[:-1] for row in rows]))
            if len(pending) >= batch:
                queued += queue(pending)
                pending = {}
        queued += queue(pending)
        if echo:
            echo(f"{label}: {queued} queued so far")
    return queued


def _scan_groups():
    """(rule, rows) where rows are citizens of groups with more than one member, ordered by group key."""
    nid = (
        Citizen.select(Citizen.national_id)
        .where(Citizen.national_id.is_null(False))
        .group_by(Citizen.national_id)
        .having(fn.COUNT(Citizen.id) > 1)
    )
    yield (
        "national_id",
        Citizen.select(*_COLUMNS, Citizen.national_id)
        .where(Citizen.national_id.in_(nid))
        .order_by(Citizen.national_id, Citizen.id)
        .tuples()
        .iterator(),
    )
    # The name is folded in Python: the groups of (birth date, phone) or (birth date, commune) with
    # more than one member are few, and within them fold() decides.
    for label, other in (("name_dob_phone", Citizen.phone), ("name_dob_ward", Citizen.ward)):
        groups = (
            Citizen.select(Citizen.date_of_birth.alias("dob"), other.alias("other"))
            .where(Citizen.date_of_birth.is_null(False) & other.is_null(False))
            .group_by(Citizen.date_of_birth, other)
            .having(fn.COUNT(Citizen.id) > 1)
            .alias("g")
        )
        query = (
            Citizen.select(*_COLUMNS, groups.c.dob, groups.c.other)
            .join(groups, on=((Citizen.date_of_birth == groups.c.dob) & (other == groups.c.other)))
            .order_by(Citizen.date_of_birth, other, Citizen.id)
            .tuples()
            .iterator()
        )
        yield label, ((*row[:6], (row[6], row[7])) for row in query)


# Merge


def default_choices(survivor, merged):
    """For each field: "survivor" when the survivor has a value or neither has, else "merged"."""
    choices = {}
    for name in MERGE_FIELDS:
        column = f"{name}_id" if name in ("ward", "household") else name
        mine, theirs = getattr(survivor, column), getattr(merged, column)
        choices[name] = "merged" if _empty(mine) and not _empty(theirs) else "survivor"
    return choices


def _empty(value):
    return value is None or value == ""


def _snapshot(citizen):
    data = {name: getattr(citizen, f"{name}_id" if name in ("ward", "household") else name) for name in MERGE_FIELDS}
    data["id"] = citizen.id
    return data


def merge(survivor, merged, choices, by, note=None, address=None):
    """Merge the record merged into survivor, in one transaction; return the moved row counts.

    choices: {field: "survivor" | "merged"}, which record's value the survivor keeps (missing:
    the survivor's). Every row that points at merged moves to survivor; merged's identifiers
    become aliases of survivor; merged is deleted. FieldError when the chosen values do not
    make a valid record; nothing is changed then.
    """
    if survivor.id == merged.id:
        raise FieldError("id", "A record cannot be merged into itself.")
    survivor = Citizen.get_by_id(survivor.id)
    merged = Citizen.get_by_id(merged.id)
    before = {"survivor": _snapshot(survivor), "merged": _snapshot(merged)}
    with db.atomic():
        moved, dropped = _move_rows(survivor.id, merged.id, by)
        Citizen.delete().where(Citizen.id == merged.id).execute()
        for name in MERGE_FIELDS:
            if choices.get(name) == "merged":
                column = f"{name}_id" if name in ("ward", "household") else name
                setattr(survivor, column, getattr(merged, column))
        survivor.save()
        moved["aliases"] = _keep_aliases(survivor, before)
        candidate = _close_candidates(survivor.id, merged.id, by, note)
        after = _snapshot(survivor)
        detail = {
            "before": before,
            "after": after,
            "choices": {k: v for k, v in choices.items() if k in MERGE_FIELDS},
            "moved": moved,
            "dropped_vaccinations": dropped,
            "candidate": candidate.id,
            "note": note or "",
        }
        changes = {k: [before["survivor"][k], v] for k, v in after.items() if before["survivor"][k] != v}
        AuditEvent.record(
            Action.UPDATE,
            actor=by,
            object_type="citizen_merge",
            object_id=survivor.id,
            citizen_id=survivor.id,
            address=address,
            changes=changes,
            merged_id=merged.id,
            **detail,
        )
        AuditEvent.record(
            Action.DELETE,
            actor=by,
            object_type="citizen_merge",
            object_id=merged.id,
            citizen_id=merged.id,
            address=address,
            merged_into=survivor.id,
            deleted=before["merged"],
        )
    return moved


def _move_rows(survivor_id, merged_id, by):
    """Point every row of merged at survivor; return ({table: count}, [dropped vaccination details])."""
    moved = {}
    moved["family_relation"] = _move_relations(survivor_id, merged_id)
    dropped = []
    mine = {
        (v, d)
        for v, d in Vaccination.select(Vaccination.vaccine, Vaccination.dose_number)
        .where(Vaccination.citizen == survivor_id)
        .tuples()
    }
    for dose in Vaccination.select().where(Vaccination.citizen == merged_id):
        if (dose.vaccine_id, dose.dose_number) in mine:
            dropped.append(
                {
                    "id": dose.id,
                    "vaccine": dose.vaccine_id,
                    "dose_number": dose.dose_number,
                    "date": dose.date,
                    "site": dose.site_id,
                    "lot": dose.lot,
                }
            )
            dose.delete_instance()
    moved["vaccination"] = _repoint(Vaccination.citizen, survivor_id, merged_id)
    for model in (Condition, Allergy, Encounter, CorrectionRequest, Declaration):
        moved[model._meta.table_name] = _repoint(model.citizen, survivor_id, merged_id)
    moved["risk_case"], moved["risk_cases_joined"] = _move_risk_cases(survivor_id, merged_id, by)
    moved["citizen_alias"] = _repoint(CitizenAlias.citizen, survivor_id, merged_id)
    for model in (LookupChallenge, CitizenSession):
        moved[model._meta.table_name] = (
            model.update(citizen_id=survivor_id).where(model.citizen_id == merged_id).execute()
        )
    # Any other table that refers to a citizen (added by a later feature) follows the same way.
    handled = {FamilyRelation.citizen, FamilyRelation.relative, Vaccination.citizen, RiskCase.citizen}
    handled |= {m.citizen for m in (Condition, Allergy, Encounter, CorrectionRequest, Declaration, CitizenAlias)}
    for field in Citizen._meta.backrefs:
        if field not in handled:
            moved[f"{field.model._meta.table_name}.{field.name}"] = _repoint(field, survivor_id, merged_id)
    return moved, dropped


def _repoint(field, survivor_id, merged_id):
    return field.model.update({field: survivor_id}).where(field == merged_id).execute()


def _move_relations(survivor_id, merged_id):
    """Relations in both directions, without a self-relation or a repeated one."""
    count = 0
    relations = FamilyRelation.select().where(
        (FamilyRelation.citizen == merged_id) | (FamilyRelation.relative == merged_id)
    )
    for relation in list(relations):
        citizen = survivor_id if relation.citizen_id == merged_id else relation.citizen_id
        relative = survivor_id if relation.relative_id == merged_id else relation.relative_id
        exists = FamilyRelation.select().where(
            (FamilyRelation.citizen == citizen)
            & (FamilyRelation.relative == relative)
            & (FamilyRelation.kind == relation.kind)
        )
        if citizen == relative or exists.exists():
            relation.delete_instance()
            continue
        FamilyRelation.update(citizen=citizen, relative=relative).where(FamilyRelation.id == relation.id).execute()
        count += 1
    return count


def _move_risk_cases(survivor_id, merged_id, by):
    """Cases follow the person, keyed to the survivor; an open case of a disease the survivor already
    has an open case of joins that case (its declarations and timeline move there, one entry says so).

    Returns (cases moved, numbers of the cases that joined another).
    """
    new_key = person_key(survivor_id, None, None, None)
    open_cases = {
        case.disease_id: case
        for case in RiskCase.select().where((RiskCase.person_key == new_key) & RiskCase.closed_at.is_null())
    }
    count, joined = 0, []
    for case in RiskCase.select().where(RiskCase.citizen == merged_id).order_by(RiskCase.id):
        keeper = open_cases.get(case.disease_id)
        if case.closed_at is None and keeper is not None:
            _join_case(keeper, case, by)
            joined.append(case.number)
            continue
        RiskCase.update({RiskCase.citizen: survivor_id, RiskCase.person_key: new_key}).where(
            RiskCase.id == case.id
        ).execute()
        count += 1
    return count, joined


def _join_case(keeper, case, by):
    """Fold case into keeper, both open for one disease and now one person: then delete case."""
    now = clock.now()
    Declaration.update(case=keeper.id).where(Declaration.case == case.id).execute()
    CaseEvent.update(case=keeper.id).where(CaseEvent.case == case.id).execute()
    changes = {
        RiskCase.opened_at: min(keeper.opened_at, case.opened_at),
        RiskCase.touched_at: now,
        RiskCase.updated_at: utcnow(),
    }
    if case.risk_rank > keeper.risk_rank:
        changes |= {RiskCase.risk_level: case.risk_level, RiskCase.risk_rank: case.risk_rank}
    if keeper.assignee_id is None and case.assignee_id is not None:
        changes[RiskCase.assignee] = case.assignee_id
    RiskCase.update(changes).where(RiskCase.id == keeper.id).execute()
    CaseEvent.create(
        case=keeper.id,
        at=now,
        actor=getattr(by, "id", None),
        kind=CaseEvent.JOINED,
        from_status=case.status,
        note=case.number,
    )
    RiskCase.delete().where(RiskCase.id == case.id).execute()


def _keep_aliases(survivor, before):
    """Every identifier either record had that the survivor no longer carries becomes its alias."""
    count = 0
    for kind in ALIAS_FIELDS:
        current = getattr(survivor, kind)
        for side in ("merged", "survivor"):
            value = before[side][kind]
            if value and value != current:
                inserted = (
                    CitizenAlias.insert(citizen=survivor.id, kind=kind, value=value, created_at=utcnow())
                    .on_conflict_ignore()
                    .execute()
                )
                count += 1 if inserted else 0
    return count


def _close_candidates(survivor_id, merged_id, by, note):
    """Mark the pair merged; pairs with merged now speak of survivor (or go when they repeat one)."""
    a, b = DuplicateCandidate.pair(survivor_id, merged_id)
    now = utcnow()
    candidate = (
        DuplicateCandidate.live()
        .where((DuplicateCandidate.citizen_a_id == a) & (DuplicateCandidate.citizen_b_id == b))
        .first()
    )
    if candidate is None:
        candidate = DuplicateCandidate.create(citizen_a_id=a, citizen_b_id=b, reason="manual", found_at=now)
    others = DuplicateCandidate.select().where(
        ((DuplicateCandidate.citizen_a_id == merged_id) | (DuplicateCandidate.citizen_b_id == merged_id))
        & (DuplicateCandidate.id != candidate.id)
        & (DuplicateCandidate.status != MERGED)
    )
    for other in list(others):
        pair = DuplicateCandidate.pair(survivor_id, other.other_id(merged_id))
        repeat = (
            DuplicateCandidate.live()
            .where((DuplicateCandidate.citizen_a_id == pair[0]) & (DuplicateCandidate.citizen_b_id == pair[1]))
            .first()
        )
        if pair[0] == pair[1] or (repeat is not None and (repeat.status == NOT_DUPLICATE or other.status == OPEN)):
            other.delete_instance()
        elif repeat is not None:  # other remembers "not a duplicate", repeat is only open: keep the decision
            repeat.delete_instance()
            other.citizen_a_id, other.citizen_b_id = pair
            other.save()
        else:
            other.citizen_a_id, other.citizen_b_id = pair
            other.save()
    candidate.status, candidate.survivor_id = MERGED, survivor_id
    candidate.decided_by, candidate.decided_at, candidate.note = by, now, (note or "").strip()[:1000] or None
    candidate.save()
    return candidate
