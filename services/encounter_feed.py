"""The hospital daily feed: check a batch of encounters, then write all of it or nothing.

Each item is a dict as sent by the API (or built from a CSV row): visit_id, patient {health_code,
national_id, full_name, date_of_birth, ward_code}, date, icd10_code, diagnosis, summary. A visit is
identified by (facility, visit_id): sending it again updates it. A patient the portal does not know
is queued in UnmatchedEncounter for staff of their commune to resolve.
"""

import dataclasses
import datetime
import json

from flask_babel import lazy_gettext as _l

from models.api import UnmatchedEncounter
from models.audit import Action
from models.audit import AuditEvent
from models.base import any_of
from models.base import db
from models.citizens import Citizen
from models.duplicates import CitizenAlias
from models.places import Ward
from models.records import ICD10
from models.records import Encounter
from models.validation import FieldError
from models.validation import normalize_health_code
from models.validation import normalize_national_id
from models.validation import parse_date
from models.validation import validate_birth_date

MAX_ITEMS = 1000
MAX_VISIT_ID = 64
MAX_DIAGNOSIS = 255
MAX_SUMMARY = 10_000
MAX_NAME = 255
MAX_WARD_CODE = 10**6  # official commune codes have 5 digits
# Visit dates are the facility's local dates: Vietnam is UTC+7 all year.
LOCAL_OFFSET = datetime.timedelta(hours=7)
INSERT_CHUNK = 500
ENCOUNTER_FIELDS = ("citizen_id", "date", "icd10_code", "diagnosis", "summary")


@dataclasses.dataclass
class ItemError:
    """One reason an item was refused: index in the batch, field ("patient.health_code", "" for the item)."""

    index: int
    field: str
    reason: str


@dataclasses.dataclass
class FeedResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    queued: int = 0
    errors: list = dataclasses.field(default_factory=list)
    citizen_ids: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.errors

    def counts(self):
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "queued": self.queued}


@dataclasses.dataclass
class _Visit:
    """A checked item."""

    index: int
    visit_id: str
    health_code: str | None
    national_id: str | None
    date: datetime.date
    icd10_code: str | None
    diagnosis: str | None
    summary: str | None
    ward_code: int | None
    payload: dict


def ingest(facility, items, now, actor=None, source="api", audit_detail=None, max_items=MAX_ITEMS):
    """Check every item, then write them all in one transaction; nothing is written when one is invalid.

    actor: who is recorded in the audit trail (a Staff account, or the facility's key as a stand-in).
    """
    result = FeedResult()
    if len(items) > max_items:
        result.errors.append(ItemError(-1, "", _l("At most %(n)s encounters per request.", n=max_items)))
        return result
    today = (now + LOCAL_OFFSET).date()
    visits = []
    seen = {}
    for index, item in enumerate(items):
        visit = _check(index, item, today, result.errors)
        if visit is None:
            continue
        if visit.visit_id in seen:
            result.errors.append(
                ItemError(
                    index, "visit_id", _l("This visit_id is already in the batch (item %(n)s).", n=seen[visit.visit_id])
                )
            )
            continue
        seen[visit.visit_id] = index
        visits.append(visit)
    _check_wards(visits, result.errors)
    if result.errors:
        result.errors.sort(key=lambda e: e.index)
        return result
    with db.atomic():
        _write(facility, visits, now, result)
        AuditEvent.record(
            Action.CREATE,
            actor=actor,
            object_type="encounter_feed",
            object_id=facility.id,
            source=source,
            facility=facility.code,
            citizen_ids=result.citizen_ids,
            **result.counts(),
            **(audit_detail or {}),
        )
    return result


def _text(item, key, index, errors, limit, field=None):
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(ItemError(index, field or key, _l("This must be text.")))
        return None
    value = value.strip()
    if "\x00" in value or not _storable(value):
        errors.append(ItemError(index, field or key, _l("This must be text.")))
        return None
    if len(value) > limit:
        errors.append(ItemError(index, field or key, _l("At most %(n)s characters.", n=limit)))
        return None
    return value or None


def _storable(value):
    """False for text no database column can hold (a lone UTF-16 surrogate, sent as a JSON escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(index, item, today, errors):
    """The item as a _Visit, or None after adding its errors."""
    if not isinstance(item, dict):
        errors.append(ItemError(index, "", _l("Each encounter must be a JSON object.")))
        return None
    before = len(errors)
    visit_id = _text(item, "visit_id", index, errors, MAX_VISIT_ID)
    if visit_id is None and len(errors) == before:
        errors.append(ItemError(index, "visit_id", _l("The facility's visit number is required.")))
    date = _visit_date(item.get("date"), index, today, errors)
    icd10_code = _text(item, "icd10_code", index, errors, 16)
    if icd10_code is not None:
        icd10_code = icd10_code.upper()
        if not ICD10.match(icd10_code):
            errors.append(ItemError(index, "icd10_code", _l("An ICD-10 code looks like A09 or J45.9.")))
    diagnosis = _text(item, "diagnosis", index, errors, MAX_DIAGNOSIS)
    summary = _text(item, "summary", index, errors, MAX_SUMMARY)
    patient = item.get("patient")
    if not isinstance(patient, dict):
        errors.append(ItemError(index, "patient", _l("The patient is required: give a health_code or national_id.")))
        return None
    patient = _check_patient(patient, index, errors)
    if len(errors) > before:
        return None
    # What is kept of an unknown patient's visit: the checked fields, never whatever else was sent.
    payload = {
        "visit_id": visit_id,
        "date": date.isoformat(),
        "icd10_code": icd10_code,
        "diagnosis": diagnosis,
        "summary": summary,
        "patient": patient,
    }
    return _Visit(
        index,
        visit_id,
        patient["health_code"],
        patient["national_id"],
        date,
        icd10_code,
        diagnosis,
        summary,
        patient["ward_code"],
        payload,
    )


def _visit_date(value, index, today, errors):
    if value is None or value == "":
        errors.append(ItemError(index, "date", _l("The visit date is required.")))
        return None
    if not isinstance(value, str):
        errors.append(ItemError(index, "date", _l("Enter the date as YYYY-MM-DD, such as 2025-12-25.")))
        return None
    try:
        date = parse_date(value, field="date")
    except FieldError:
        errors.append(ItemError(index, "date", _l("Enter the date as YYYY-MM-DD, such as 2025-12-25.")))
        return None
    if date > today:
        errors.append(ItemError(index, "date", _l("The date cannot be in the future.")))
        return None
    return date


def _check_patient(patient, index, errors):
    """The patient object's checked fields, adding its errors."""
    before = len(errors)
    codes = {}
    for key, normalize in (("health_code", normalize_health_code), ("national_id", normalize_national_id)):
        value = _text(patient, key, index, errors, 32, field=f"patient.{key}")
        try:
            codes[key] = normalize(value, field=f"patient.{key}") if value else None
        except FieldError as exc:
            errors.append(ItemError(index, exc.field, exc.message))
            codes[key] = None
    if len(errors) == before and not codes["health_code"] and not codes["national_id"]:
        errors.append(
            ItemError(index, "patient.health_code", _l("Give the patient's health_code or national_id (or both)."))
        )
    full_name = _text(patient, "full_name", index, errors, MAX_NAME, field="patient.full_name")
    born = _text(patient, "date_of_birth", index, errors, 10, field="patient.date_of_birth")
    if born:
        try:
            born = validate_birth_date(born, field="patient.date_of_birth").isoformat()
        except FieldError as exc:
            errors.append(ItemError(index, exc.field, exc.message))
    ward_code = patient.get("ward_code")
    if isinstance(ward_code, str) and ward_code.strip().isascii() and ward_code.strip().isdigit():
        ward_code = int(ward_code)
    elif isinstance(ward_code, str) and not ward_code.strip():
        ward_code = None
    if ward_code is not None and (isinstance(ward_code, bool) or not isinstance(ward_code, int)):
        errors.append(ItemError(index, "patient.ward_code", _l("The commune code is a number, such as 6757.")))
        ward_code = None
    elif ward_code is not None and not 0 < ward_code < MAX_WARD_CODE:
        errors.append(ItemError(index, "patient.ward_code", _l("There is no commune with this code.")))
        ward_code = None
    return {
        "health_code": codes["health_code"],
        "national_id": codes["national_id"],
        "full_name": full_name,
        "date_of_birth": born or None,
        "ward_code": ward_code,
    }


def _check_wards(visits, errors):
    """Refuse commune codes that name no commune (one query for the batch)."""
    codes = {v.ward_code for v in visits if v.ward_code is not None}
    if not codes:
        return
    known = {row[0] for row in Ward.select(Ward.code).where(any_of(Ward.code, sorted(codes))).tuples()}
    for visit in visits:
        if visit.ward_code is not None and visit.ward_code not in known:
            errors.append(ItemError(visit.index, "patient.ward_code", _l("There is no commune with this code.")))


def _patients(visits):
    """{("health_code"|"national_id", value): citizen id}, from one query; a national ID shared by two is left out."""
    health_codes = sorted({v.health_code for v in visits if v.health_code})
    national_ids = sorted({v.national_id for v in visits if v.national_id})
    if not health_codes and not national_ids:
        return {}
    rows = (
        Citizen.select(Citizen.id, Citizen.health_code, Citizen.national_id)
        .where(any_of(Citizen.health_code, health_codes) | any_of(Citizen.national_id, national_ids))
        .tuples()
    )
    found = {}
    shared = set()
    for citizen_id, health_code, national_id in rows:
        if health_code:
            found[("health_code", health_code)] = citizen_id
        if national_id:
            key = ("national_id", national_id)
            if key in found and found[key] != citizen_id:
                shared.add(key)
            found[key] = citizen_id
    for key in shared:
        del found[key]
    # A merged record's old health code or ID number still names the person it was merged into.
    for kind, values in (("health_code", health_codes), ("national_id", national_ids)):
        missing = [value for value in values if (kind, value) not in found and (kind, value) not in shared]
        for value, citizen_id in CitizenAlias.owners(kind, missing).items():
            found[(kind, value)] = citizen_id
    return found


def _write(facility, visits, now, result):
    patients = _patients(visits)
    visit_ids = [v.visit_id for v in visits]
    existing = {
        row[0]: row
        for row in Encounter.select(
            Encounter.visit_id, Encounter.id, *[getattr(Encounter, f) for f in ENCOUNTER_FIELDS]
        )
        .where((Encounter.facility == facility.id) & any_of(Encounter.visit_id, visit_ids))
        .tuples()
    }
    queued = {
        row.visit_id: row
        for row in UnmatchedEncounter.select().where(
            (UnmatchedEncounter.facility == facility.id) & any_of(UnmatchedEncounter.visit_id, visit_ids)
        )
    }
    new_encounters, new_queue = [], []
    touched = set()
    for visit in visits:
        citizen_id = patients.get(("health_code", visit.health_code)) or patients.get(
            ("national_id", visit.national_id)
        )
        waiting = queued.get(visit.visit_id)
        if citizen_id is None and waiting is not None and waiting.resolved_citizen_id is not None:
            citizen_id = waiting.resolved_citizen_id  # staff named the patient of this visit already
        if citizen_id is None:
            _queue(facility, visit, waiting, now, new_queue)
            result.queued += 1
            continue
        touched.add(citizen_id)
        if waiting is not None and waiting.resolved_at is None:
            waiting.resolve(citizen_id, by=None, now=now)
        values = {
            "citizen_id": citizen_id,
            "date": visit.date,
            "icd10_code": visit.icd10_code,
            "diagnosis": visit.diagnosis,
            "summary": visit.summary,
        }
        row = existing.get(visit.visit_id)
        if row is None:
            new_encounters.append(
                {**values, "facility": facility.id, "visit_id": visit.visit_id, "created_at": now, "updated_at": now}
            )
            result.created += 1
        elif dict(zip(ENCOUNTER_FIELDS, row[2:], strict=True)) == values:
            result.unchanged += 1
        else:
            update = {getattr(Encounter, f.removesuffix("_id")): values[f] for f in ENCOUNTER_FIELDS}
            Encounter.update({**update, Encounter.updated_at: now}).where(Encounter.id == row[1]).execute()
            result.updated += 1
    for start in range(0, len(new_encounters), INSERT_CHUNK):
        Encounter.insert_many(new_encounters[start : start + INSERT_CHUNK]).execute()
    for start in range(0, len(new_queue), INSERT_CHUNK):
        UnmatchedEncounter.insert_many(new_queue[start : start + INSERT_CHUNK]).execute()
    result.citizen_ids = sorted(touched)


def _queue(facility, visit, waiting, now, new_queue):
    payload = json.dumps(visit.payload, ensure_ascii=False, sort_keys=True, default=str)
    if waiting is None:
        new_queue.append(
            {
                "facility": facility.id,
                "visit_id": visit.visit_id,
                "payload": payload,
                "ward_code": visit.ward_code,
                "created_at": now,
                "updated_at": now,
            }
        )
    elif waiting.payload != payload or waiting.ward_code != visit.ward_code:
        UnmatchedEncounter.update(payload=payload, ward_code=visit.ward_code, updated_at=now).where(
            UnmatchedEncounter.id == waiting.id
        ).execute()


def encounter_from_queue(row, citizen, by, now):
    """Resolve a queued row to citizen: write its encounter (created or updated) and mark it resolved."""
    item = row.item
    with db.atomic():
        encounter = Encounter.get_or_none(
            (Encounter.facility == row.facility_id) & (Encounter.visit_id == row.visit_id)
        )
        if encounter is None:
            encounter = Encounter(facility=row.facility_id, visit_id=row.visit_id)
        encounter.citizen = citizen
        encounter.date = parse_date(item.get("date"), field="date")
        encounter.icd10_code = item.get("icd10_code")
        encounter.diagnosis = (item.get("diagnosis") or "").strip() or None
        encounter.summary = (item.get("summary") or "").strip() or None
        encounter.save()
        row.resolve(citizen, by=by, now=now)
    return encounter
