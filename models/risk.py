"""Risk checklists, citizens' declarations and the risk cases the CDC triages (seed 003)."""

import datetime
import json
import re
import secrets
from decimal import Decimal
from decimal import InvalidOperation

from flask_babel import lazy_gettext as _l
from peewee import JOIN
from peewee import BooleanField
from peewee import CharField
from peewee import DateField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import IntegrityError
from peewee import TextField
from peewee import fn

from models.accounts import PERMISSIONS
from models.accounts import Role
from models.accounts import Staff
from models.base import BaseModel
from models.base import db
from models.base import utcnow
from models.citizens import Citizen
from models.places import Ward
from models.text import fold
from models.units import HealthUnit
from models.units import UnitKind
from models.units import UnitWard
from models.validation import FieldError
from models.validation import parse_date

UNTOUCHED_AFTER = datetime.timedelta(hours=24)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_NUMBER_RULE = re.compile(r"(>=|<=|>|<|=)\s*(-?[0-9]+(?:[.,][0-9]+)?)")
_DATE_RULE = re.compile(r"within\s+([0-9]{1,3})")
# Case and declaration numbers: no 0/O or 1/I/L, so that they can be read out on the phone.
_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class RiskLevel:
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    ALL = (LOW, MEDIUM, HIGH)
    RANK = {LOW: 0, MEDIUM: 1, HIGH: 2}
    LABELS = {LOW: _l("Low"), MEDIUM: _l("Medium"), HIGH: _l("High")}


class QuestionKind:
    YES_NO = "yes_no"
    SINGLE = "single_choice"
    MULTIPLE = "multiple_choice"
    NUMBER = "number"
    DATE = "date"
    TEXT = "text"

    ALL = (YES_NO, SINGLE, MULTIPLE, NUMBER, DATE, TEXT)
    LABELS = {
        YES_NO: _l("Yes / no"),
        SINGLE: _l("Single choice"),
        MULTIPLE: _l("Multiple choice"),
        NUMBER: _l("Number"),
        DATE: _l("Date"),
        TEXT: _l("Text"),
    }


class CaseStatus:
    NEW = "new"
    VERIFYING = "verifying"
    HOME_MONITORING = "home_monitoring"
    FACILITY_ISOLATION = "facility_isolation"
    HOSPITAL_REFERRAL = "hospital_referral"
    CLEARED = "closed_cleared"
    CONFIRMED = "closed_confirmed"
    UNREACHABLE = "closed_unreachable"

    ALL = (NEW, VERIFYING, HOME_MONITORING, FACILITY_ISOLATION, HOSPITAL_REFERRAL, CLEARED, CONFIRMED, UNREACHABLE)
    CLOSED = (CLEARED, CONFIRMED, UNREACHABLE)
    OPEN = (NEW, VERIFYING, HOME_MONITORING, FACILITY_ISOLATION, HOSPITAL_REFERRAL)
    LABELS = {
        NEW: _l("New"),
        VERIFYING: _l("Verifying"),
        HOME_MONITORING: _l("Monitoring at home"),
        FACILITY_ISOLATION: _l("Isolated at a facility"),
        HOSPITAL_REFERRAL: _l("Referred to hospital"),
        CLEARED: _l("Closed: cleared"),
        CONFIRMED: _l("Closed: confirmed case"),
        UNREACHABLE: _l("Closed: unreachable"),
    }
    _CARE = (HOME_MONITORING, FACILITY_ISOLATION, HOSPITAL_REFERRAL)
    # new -> verifying -> care (home / facility / hospital) -> closed. Verification may close a
    # case straight away (no risk after all, or nobody answers); a confirmed case has been in care.
    TRANSITIONS = {
        NEW: (VERIFYING,),
        VERIFYING: (*_CARE, CLEARED, UNREACHABLE),
        HOME_MONITORING: (FACILITY_ISOLATION, HOSPITAL_REFERRAL, *CLOSED),
        FACILITY_ISOLATION: (HOME_MONITORING, HOSPITAL_REFERRAL, *CLOSED),
        HOSPITAL_REFERRAL: (FACILITY_ISOLATION, *CLOSED),
        CLEARED: (),
        CONFIRMED: (),
        UNREACHABLE: (),
    }


def new_number(prefix):
    """A random, readable reference such as KB-7QX4M2PD."""
    return prefix + "-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


def roles_that_can(action, resource):
    """The roles whose permissions allow action on resource."""
    return tuple(role for role, grants in PERMISSIONS.items() if action in grants.get(resource, ()))


class Disease(BaseModel):
    """A disease that checklists and vaccines speak of: data, not code."""

    code = CharField(unique=True, max_length=32)
    name = CharField(max_length=255)
    active = BooleanField(default=True)

    def __str__(self):
        return self.name

    def clean(self):
        self.code = (self.code or "").strip().upper()
        self.name = " ".join((self.name or "").split())
        if not re.fullmatch(r"[A-Z0-9_-]{1,32}", self.code):
            raise FieldError("code", _l("A code has 1 to 32 letters, digits, dashes or underscores."))
        if not self.name:
            raise FieldError("name", _l("The name is required."))

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)


class Checklist(BaseModel):
    """A risk checklist (bảng kiểm) about one disease; its questions live in numbered versions."""

    name = CharField(max_length=255)
    disease = ForeignKeyField(Disease, backref="checklists", on_delete="RESTRICT")
    description = TextField(null=True)
    active = BooleanField(default=True)

    def __str__(self):
        return self.name

    def clean(self):
        self.name = " ".join((self.name or "").split())
        if not self.name:
            raise FieldError("name", _l("The name is required."))

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)

    def current_version(self):
        """The newest published version, which citizens answer; None before the first is published."""
        return (
            ChecklistVersion.select()
            .where((ChecklistVersion.checklist == self.id) & ChecklistVersion.published_at.is_null(False))
            .order_by(ChecklistVersion.number.desc())
            .first()
        )

    @classmethod
    def offered(cls):
        """Active checklists that have a published version, by name."""
        published = ChecklistVersion.select(ChecklistVersion.checklist).where(
            ChecklistVersion.published_at.is_null(False)
        )
        return (
            cls.select(cls, Disease)
            .join(Disease)
            .where(cls.active & Disease.active & cls.id.in_(published))
            .order_by(cls.name, cls.id)
        )


class ChecklistVersion(BaseModel):
    """One version of a checklist's questions, thresholds and forcing rules; frozen once published."""

    checklist = ForeignKeyField(Checklist, backref="versions", on_delete="RESTRICT")
    number = IntegerField()
    medium_from = IntegerField(default=3)
    high_from = IntegerField(default=6)
    # One rule a line: conditions joined by "&", each `code` (the question scored) or `code = value`.
    force_high = TextField(default="")
    published_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("checklist", "number"), True),)

    def __str__(self):
        return f"{self.checklist.name} v{self.number}"

    @property
    def is_published(self):
        return self.published_at is not None

    def ordered_questions(self):
        return list(Question.select().where(Question.version == self.id).order_by(Question.position, Question.id))

    def clean(self):
        if self.id is not None:
            stored = ChecklistVersion.get_or_none(ChecklistVersion.id == self.id)
            if stored is not None and stored.is_published:
                raise FieldError(
                    "published_at", _l("A published version cannot change; make a new version from it instead.")
                )
        if self.medium_from is None or self.high_from is None or not 0 < self.medium_from < self.high_from:
            raise FieldError(
                "high_from", _l("The thresholds must be numbers with 0 < medium risk from < high risk from.")
            )
        self.force_high = "\n".join(line.strip() for line in (self.force_high or "").splitlines() if line.strip())

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)

    def forcing_rules(self, questions=None):
        """[[(code, value or None), ...], ...]: each rule forces high risk when all its conditions hold."""
        by_code = {q.code: q for q in (questions if questions is not None else self.ordered_questions())}
        rules = []
        for line in (self.force_high or "").splitlines():
            conditions = []
            for part in line.split("&"):
                code, has_value, value = (p.strip() for p in part.partition("="))
                if code not in by_code:
                    raise FieldError(
                        "force_high", _l("The forcing rule %(rule)s names an unknown question.", rule=line.strip())
                    )
                conditions.append((code, value if has_value else None))
            rules.append(conditions)
        return rules

    def publish(self, now=None):
        """Freeze this version: citizens answer it from now on."""
        if self.is_published:
            raise FieldError("published_at", _l("This version is already published."))
        questions = self.ordered_questions()
        if not questions:
            raise FieldError("published_at", _l("Add at least one question before publishing."))
        for question in questions:
            question.check()
        self.forcing_rules(questions)
        self.published_at = now or utcnow()
        ChecklistVersion.update(published_at=self.published_at, updated_at=utcnow()).where(
            ChecklistVersion.id == self.id
        ).execute()

    def new_draft(self):
        """A new, unpublished version with a copy of this one's questions and rules, as stored."""
        source = ChecklistVersion.get_by_id(self.id)
        with db.atomic():
            latest = (
                ChecklistVersion.select(fn.MAX(ChecklistVersion.number))
                .where(ChecklistVersion.checklist == self.checklist_id)
                .scalar()
            )
            draft = ChecklistVersion.create(
                checklist=self.checklist_id,
                number=(latest or 0) + 1,
                medium_from=source.medium_from,
                high_from=source.high_from,
                force_high=source.force_high,
            )
            for q in source.ordered_questions():
                Question.create(
                    version=draft,
                    position=q.position,
                    code=q.code,
                    text=q.text,
                    kind=q.kind,
                    options=q.options,
                    weight=q.weight,
                    rule=q.rule,
                    required=q.required,
                )
        return draft

    def assess(self, answers, today):
        """(score, risk level, codes of the questions that scored) for cleaned answers."""
        questions = self.ordered_questions()
        scored = {}
        for question in questions:
            points = question.points(answers.get(question.code), today)
            if points:
                scored[question.code] = points
        score = sum(scored.values())
        level = RiskLevel.LOW
        if score >= self.high_from:
            level = RiskLevel.HIGH
        elif score >= self.medium_from:
            level = RiskLevel.MEDIUM
        by_code = {q.code: q for q in questions}
        for rule in self.forcing_rules(questions):
            if all(by_code[code].satisfies(answers.get(code), value, today) for code, value in rule):
                level = RiskLevel.HIGH
                break
        return score, level, sorted(scored)


class Question(BaseModel):
    """One question of a checklist version, with its weight or rule."""

    version = ForeignKeyField(ChecklistVersion, backref="questions", on_delete="CASCADE")
    position = IntegerField(default=0)
    code = CharField(max_length=32)
    text = CharField(max_length=500)
    kind = CharField(max_length=16, choices=list(QuestionKind.LABELS.items()))
    # For choices, one option a line: `value | label | weight`.
    options = TextField(default="")
    # Points for "yes", or for a number or date that meets the rule.
    weight = IntegerField(default=0)
    # For numbers `>= 38` (also >, <, <=, =); for dates `within 14` (days before the declaration).
    rule = CharField(max_length=64, default="")
    required = BooleanField(default=True)

    class Meta:
        indexes = ((("version", "code"), True),)

    def __str__(self):
        return self.text

    def choices(self):
        """[(value, label, weight)] of a choice question."""
        found = []
        for line in (self.options or "").splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise FieldError("options", _l("Write each option as: value | label | weight."))
            try:
                weight = int(parts[2])
            except ValueError:
                raise FieldError("options", _l("The weight of an option must be a whole number.")) from None
            found.append((parts[0], parts[1], weight))
        return found

    def check(self):
        """Raise FieldError naming the first thing wrong with the question's definition."""
        self.code = (self.code or "").strip().lower()
        self.text = " ".join((self.text or "").split())
        self.rule = (self.rule or "").strip()
        if not _CODE.fullmatch(self.code):
            raise FieldError(
                "code", _l("A question code starts with a letter and has only small letters, digits and _.")
            )
        if not self.text:
            raise FieldError("text", _l("The question text is required."))
        if self.kind not in QuestionKind.ALL:
            raise FieldError("kind", _l("Choose the kind of answer."))
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            choices = self.choices()
            if len(choices) < 2:
                raise FieldError("options", _l("A choice question needs at least two options."))
            if len({c[0] for c in choices}) != len(choices):
                raise FieldError("options", _l("Two options have the same value."))
        if self.kind == QuestionKind.NUMBER and self.rule and not _NUMBER_RULE.fullmatch(self.rule):
            raise FieldError("rule", _l("Write the rule for a number as >= 38 (or >, <, <=, =)."))
        if self.kind == QuestionKind.DATE and self.rule and not _DATE_RULE.fullmatch(self.rule):
            raise FieldError("rule", _l("Write the rule for a date as: within 14 (days)."))

    def clean(self):
        version = ChecklistVersion.get_or_none(ChecklistVersion.id == self.version_id)
        if version is not None and version.is_published:
            raise FieldError("version", _l("A published version cannot change; make a new version from it instead."))
        self.check()

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)

    def delete_instance(self, *args, **kwargs):
        version = ChecklistVersion.get_or_none(ChecklistVersion.id == self.version_id)
        if version is not None and version.is_published:
            raise FieldError("version", _l("A published version cannot change; make a new version from it instead."))
        return super().delete_instance(*args, **kwargs)

    # Answers
    def parse_answer(self, raw):
        """The stored form of a submitted answer (None when blank); FieldError when it is not valid."""
        values = [str(v).strip() for v in (raw if isinstance(raw, list | tuple) else [raw]) if v is not None]
        values = [v for v in values if v]
        if not values:
            if self.required and self.kind != QuestionKind.MULTIPLE:
                raise FieldError(self.code, _l("Please answer this question."))
            return [] if self.kind == QuestionKind.MULTIPLE else None
        if self.kind == QuestionKind.YES_NO:
            if values[0] not in ("yes", "no"):
                raise FieldError(self.code, _l("Answer yes or no."))
            return values[0]
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            allowed = {c[0] for c in self.choices()}
            if any(v not in allowed for v in values):
                raise FieldError(self.code, _l("Choose among the options shown."))
            return values[0] if self.kind == QuestionKind.SINGLE else sorted(set(values))
        if self.kind == QuestionKind.NUMBER:
            try:
                number = Decimal(values[0].replace(",", "."))
            except InvalidOperation:
                raise FieldError(self.code, _l("Enter a number, such as 37.5.")) from None
            if not number.is_finite() or abs(number) >= 100000:
                raise FieldError(self.code, _l("Enter a number, such as 37.5."))
            return str(number)
        if self.kind == QuestionKind.DATE:
            day = parse_date(values[0], field=self.code)
            return day.isoformat()
        return values[0][:1000]

    def points(self, answer, today):
        """The points an answer earns."""
        if answer in (None, "", []):
            return 0
        if self.kind == QuestionKind.YES_NO:
            return self.weight if answer == "yes" else 0
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            chosen = answer if isinstance(answer, list) else [answer]
            return sum(weight for value, _label, weight in self.choices() if value in chosen)
        if self.kind in (QuestionKind.NUMBER, QuestionKind.DATE):
            return self.weight if self._meets_rule(answer, today) else 0
        return 0

    def _meets_rule(self, answer, today):
        if self.kind == QuestionKind.NUMBER:
            match = _NUMBER_RULE.fullmatch(self.rule or "")
            if not match:
                return False
            value, limit = Decimal(answer), Decimal(match[2].replace(",", "."))
            return {
                ">=": value >= limit,
                "<=": value <= limit,
                ">": value > limit,
                "<": value < limit,
                "=": value == limit,
            }[match[1]]
        match = _DATE_RULE.fullmatch(self.rule or "")
        if not match:
            return False
        day = datetime.date.fromisoformat(answer)
        return today - datetime.timedelta(days=int(match[1])) <= day <= today

    def satisfies(self, answer, expected, today):
        """Whether the answer meets a forcing-rule condition: a value, or (None) scoring on its own."""
        if expected is None:
            if self.kind in (QuestionKind.NUMBER, QuestionKind.DATE):
                return answer not in (None, "") and self._meets_rule(answer, today)
            return self.points(answer, today) > 0
        if isinstance(answer, list):
            return expected in answer
        return answer == expected

    def label_of(self, answer):
        """The answer as a person reads it."""
        if answer in (None, "", []):
            return ""
        if self.kind == QuestionKind.YES_NO:
            return str(_l("Yes") if answer == "yes" else _l("No"))
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            labels = {value: label for value, label, _w in self.choices()}
            chosen = answer if isinstance(answer, list) else [answer]
            return ", ".join(labels.get(v, v) for v in chosen)
        if self.kind == QuestionKind.DATE:
            return datetime.date.fromisoformat(answer).strftime("%d/%m/%Y")
        return str(answer)


def responsible_unit(ward_code):
    """The unit that answers for a commune: its commune station, else the nearest unit covering it, else the CDC."""
    owners = list(
        HealthUnit.select()
        .join(UnitWard)
        .where((UnitWard.ward == ward_code) & HealthUnit.active)
        .order_by(HealthUnit.kind != UnitKind.COMMUNE_STATION, HealthUnit.id)
    )
    if owners:
        return owners[0]
    province = Ward.select(Ward.province).where(Ward.code == ward_code).scalar()
    return (
        HealthUnit.select()
        .where((HealthUnit.province == province) & (HealthUnit.kind == UnitKind.CDC) & HealthUnit.active)
        .order_by(HealthUnit.id)
        .first()
    )


def notification_address(unit):
    """The e-mail of the unit, or of its nearest ancestor that has one."""
    for candidate in [unit, *unit.ancestors()] if unit is not None else []:
        if candidate.email:
            return candidate.email
    return None


def person_key(citizen_id, full_name, date_of_birth, ward_code):
    """Who a case is about: the citizen record, or the details given when there is none."""
    if citizen_id:
        return f"c:{citizen_id}"
    born = date_of_birth.isoformat() if date_of_birth else ""
    return f"p:{ward_code}:{born}:{fold(full_name)}"[:190]


class RiskCase(BaseModel):
    """One person's risk case for one disease, from the first declaration until it is closed."""

    number = CharField(unique=True, max_length=16)
    person_key = CharField(max_length=192)
    citizen = ForeignKeyField(Citizen, null=True, backref="risk_cases", on_delete="RESTRICT")
    full_name = CharField(max_length=255)
    date_of_birth = DateField(null=True)
    phone = CharField(max_length=10)
    ward = ForeignKeyField(Ward, backref="risk_cases", on_delete="RESTRICT")
    unit = ForeignKeyField(HealthUnit, null=True, backref="risk_cases", on_delete="RESTRICT")
    disease = ForeignKeyField(Disease, backref="risk_cases", on_delete="RESTRICT")
    risk_level = CharField(max_length=8, choices=list(RiskLevel.LABELS.items()))
    # 2 high, 1 medium, 0 low: the queue sorts on it.
    risk_rank = IntegerField()
    status = CharField(max_length=24, choices=list(CaseStatus.LABELS.items()), default=CaseStatus.NEW)
    assignee = ForeignKeyField(Staff, null=True, backref="risk_cases", on_delete="RESTRICT")
    opened_at = DateTimeField()
    # The last time staff did something with the case (or it was opened).
    touched_at = DateTimeField()
    closed_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("risk_rank", "opened_at"), False),
            (("ward", "risk_rank", "opened_at"), False),
            (("assignee", "status"), False),
            (("status", "touched_at"), False),
        )

    def __str__(self):
        return self.number

    @property
    def is_open(self):
        return self.status not in CaseStatus.CLOSED

    def is_untouched(self, now):
        return self.is_open and self.touched_at <= now - UNTOUCHED_AFTER

    @classmethod
    def in_scope(cls, scope, query=None):
        """Cases of people living in the scope's communes."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.ward.in_(sorted(scope.ward_codes)))

    @classmethod
    def open(cls, query=None):
        query = cls.select() if query is None else query
        return query.where(cls.status.in_(CaseStatus.OPEN))

    @classmethod
    def untouched(cls, now, query=None):
        """Open cases nobody has acted on for UNTOUCHED_AFTER."""
        return cls.open(query).where(cls.touched_at <= now - UNTOUCHED_AFTER)

    def next_statuses(self):
        return CaseStatus.TRANSITIONS.get(self.status, ())

    def move_to(self, status, by, note="", now=None):
        """Change the status along an allowed transition and record who, when and why."""
        now = now or utcnow()
        if status not in CaseStatus.ALL:
            raise FieldError("status", _l("Unknown status."))
        if status not in self.next_statuses():
            raise FieldError(
                "status",
                _l(
                    "A case cannot go from %(old)s to %(new)s.",
                    old=CaseStatus.LABELS[self.status],
                    new=CaseStatus.LABELS[status],
                ),
            )
        note = (note or "").strip()[:1000]
        old = self.status
        closed_at = now if status in CaseStatus.CLOSED else None
        with db.atomic():
            # Only from the status read: a colleague's simultaneous change wins, this one is refused.
            changed = (
                RiskCase.update(status=status, touched_at=now, closed_at=closed_at, updated_at=utcnow())
                .where((RiskCase.id == self.id) & (RiskCase.status == old))
                .execute()
            )
            if not changed:
                raise FieldError("status", _l("Someone else changed this case just now; reload it and try again."))
            CaseEvent.create(
                case=self.id, at=now, actor=by, kind=CaseEvent.STATUS, from_status=old, to_status=status, note=note
            )
        self.status, self.touched_at, self.closed_at = status, now, closed_at
        return old

    @classmethod
    def assignable_staff(cls, ward_code):
        """Active accounts that may work on cases of this commune: their unit's jurisdiction covers it."""
        owners = [row[0] for row in UnitWard.select(UnitWard.unit).where(UnitWard.ward == ward_code).tuples()]
        unit_ids = set(owners)
        for unit in HealthUnit.select().where(HealthUnit.id.in_(owners)):
            unit_ids.update(u.id for u in unit.ancestors())
        covers = Staff.unit.in_(sorted(unit_ids)) if unit_ids else False
        return (
            Staff.select(Staff, HealthUnit)
            .join(HealthUnit)
            .where(
                Staff.active
                & Staff.role.in_(roles_that_can("edit", "risk_case"))
                & (covers | Staff.role.in_(Role.SEE_EVERYTHING))
            )
            .order_by(HealthUnit.name, Staff.full_name)
        )

    def assign(self, staff, by, note="", now=None):
        """Give the case to a staff member who can see it; None takes it away from everyone."""
        now = now or utcnow()
        staff_id = getattr(staff, "id", staff)
        if staff_id is not None and not self.assignable_staff(self.ward_id).where(Staff.id == staff_id).exists():
            raise FieldError("assignee", _l("This case can only be given to staff whose unit covers its commune."))
        with db.atomic():
            RiskCase.update(assignee=staff_id, touched_at=now, updated_at=utcnow()).where(
                RiskCase.id == self.id
            ).execute()
            CaseEvent.create(
                case=self.id, at=now, actor=by, kind=CaseEvent.ASSIGNED, assignee=staff_id, note=(note or "")[:1000]
            )
        self.assignee_id, self.touched_at = staff_id, now

    def timeline(self):
        """What happened to the case, oldest first."""
        actor = Staff.alias()
        assignee = Staff.alias()
        return list(
            CaseEvent.select(CaseEvent, actor, assignee, Declaration)
            .join_from(CaseEvent, actor, JOIN.LEFT_OUTER, on=(CaseEvent.actor == actor.id), attr="actor")
            .join_from(CaseEvent, assignee, JOIN.LEFT_OUTER, on=(CaseEvent.assignee == assignee.id), attr="assignee")
            .join_from(CaseEvent, Declaration, JOIN.LEFT_OUTER, attr="declaration")
            .where(CaseEvent.case == self.id)
            .order_by(CaseEvent.at, CaseEvent.id)
        )


class Declaration(BaseModel):
    """One filled checklist; it keeps the version it answered, so its meaning never changes."""

    number = CharField(unique=True, max_length=16)
    case = ForeignKeyField(RiskCase, backref="declarations", on_delete="RESTRICT")
    version = ForeignKeyField(ChecklistVersion, backref="declarations", on_delete="RESTRICT")
    citizen = ForeignKeyField(Citizen, null=True, backref="declarations", on_delete="RESTRICT")
    full_name = CharField(max_length=255)
    date_of_birth = DateField(null=True)
    phone = CharField(max_length=10)
    ward = ForeignKeyField(Ward, backref="declarations", on_delete="RESTRICT")
    # Declared on someone's behalf (khai hộ): who declared and how they are related.
    declarant_name = CharField(max_length=255, null=True)
    declarant_relation = CharField(max_length=64, null=True)
    answers = TextField(default="{}")
    score = IntegerField()
    risk_level = CharField(max_length=8, choices=list(RiskLevel.LABELS.items()))
    declared_at = DateTimeField()

    class Meta:
        indexes = ((("citizen", "declared_at"), False),)

    def __str__(self):
        return self.number

    @property
    def answer_values(self):
        return json.loads(self.answers or "{}")

    def readable_answers(self):
        """[(question, answer as read)] in the order of the version's questions."""
        values = self.answer_values
        return [(q, q.label_of(values.get(q.code))) for q in self.version.ordered_questions()]

    @classmethod
    def of_citizen(cls, citizen_id, limit=50):
        """A citizen's declarations, newest first, with their checklist and case."""
        return (
            # The columns a list of declarations shows: the answers and the person stay in the database.
            cls.select(
                cls.id,
                cls.number,
                cls.declared_at,
                cls.risk_level,
                cls.case,
                cls.version,
                RiskCase.id,
                RiskCase.status,
                ChecklistVersion.id,
                ChecklistVersion.checklist,
                Checklist.id,
                Checklist.name,
            )
            .join_from(cls, RiskCase)
            .join_from(cls, ChecklistVersion)
            .join_from(ChecklistVersion, Checklist)
            .where(cls.citizen == citizen_id)
            .order_by(cls.declared_at.desc(), cls.id.desc())
            .limit(limit)
        )


class CaseEvent(BaseModel):
    """One entry of a case's timeline: a declaration, a status change or an assignment."""

    DECLARED = "declared"
    STATUS = "status"
    ASSIGNED = "assigned"
    JOINED = "joined"  # a merged duplicate person's open case folded into this one (note: its number)

    case = ForeignKeyField(RiskCase, backref="events", on_delete="RESTRICT")
    at = DateTimeField()
    actor = ForeignKeyField(Staff, null=True, backref="case_events", on_delete="RESTRICT")
    kind = CharField(max_length=16)
    from_status = CharField(max_length=24, null=True)
    to_status = CharField(max_length=24, null=True)
    assignee = ForeignKeyField(Staff, null=True, backref="+", on_delete="RESTRICT")
    declaration = ForeignKeyField(Declaration, null=True, backref="+", on_delete="RESTRICT")
    note = TextField(default="")

    class Meta:
        indexes = ((("case", "at"), False),)


class DeclarationDraft(BaseModel):
    """A filled form waiting for its one-time code; nothing is declared until the code is right."""

    token = CharField(max_length=64, unique=True)
    payload = TextField()
    expires_at = DateTimeField(index=True)


def declare(version, person, answers, now, declarant_name=None, declarant_relation=None):
    """Record a declaration and open or join the person's case; return (declaration, case, opened).

    person: dict with citizen_id, full_name, date_of_birth, phone, ward.
    answers: the raw answers by question code; FieldError names the first bad one and stores nothing.
    """
    if not version.is_published:
        raise FieldError("checklist", _l("This checklist is not open for declarations."))
    questions = version.ordered_questions()
    cleaned = {q.code: q.parse_answer(answers.get(q.code)) for q in questions}
    score, level, _scored = version.assess(cleaned, (now + datetime.timedelta(hours=7)).date())
    disease_id = Checklist.select(Checklist.disease).where(Checklist.id == version.checklist_id).scalar()
    key = person_key(person.get("citizen_id"), person["full_name"], person.get("date_of_birth"), person["ward"])
    for _attempt in range(3):
        try:
            with db.atomic():
                return _declare_once(version, person, cleaned, score, level, disease_id, key, now,
                                     declarant_name, declarant_relation)  # fmt: skip
        except IntegrityError:
            # Another declaration opened this person's case at the same moment: join it.
            continue
    raise FieldError("checklist", _l("The declaration could not be saved; please try again."))


def _declare_once(version, person, cleaned, score, level, disease_id, key, now, declarant_name, declarant_relation):
    case = (
        RiskCase.open()
        .where((RiskCase.person_key == key) & (RiskCase.disease == disease_id))
        .order_by(RiskCase.id)
        .first()
    )
    opened = case is None
    if opened:
        unit = responsible_unit(person["ward"])
        case = RiskCase.create(
            number=new_number("CA"),
            person_key=key,
            citizen=person.get("citizen_id"),
            full_name=person["full_name"],
            date_of_birth=person.get("date_of_birth"),
            phone=person["phone"],
            ward=person["ward"],
            unit=unit.id if unit else None,
            disease=disease_id,
            risk_level=level,
            risk_rank=RiskLevel.RANK[level],
            opened_at=now,
            touched_at=now,
        )
    elif RiskLevel.RANK[level] > case.risk_rank:
        # A later, graver declaration raises the case; a milder one never lowers it.
        RiskCase.update(risk_level=level, risk_rank=RiskLevel.RANK[level], updated_at=utcnow()).where(
            RiskCase.id == case.id
        ).execute()
        case.risk_level, case.risk_rank = level, RiskLevel.RANK[level]
    declaration = Declaration.create(
        number=new_number("KB"),
        case=case.id,
        version=version.id,
        citizen=person.get("citizen_id"),
        full_name=person["full_name"],
        date_of_birth=person.get("date_of_birth"),
        phone=person["phone"],
        ward=person["ward"],
        declarant_name=declarant_name or None,
        declarant_relation=declarant_relation or None,
        answers=json.dumps(cleaned, ensure_ascii=False, sort_keys=True),
        score=score,
        risk_level=level,
        declared_at=now,
    )
    CaseEvent.create(case=case.id, at=now, kind=CaseEvent.DECLARED, declaration=declaration.id, note="")
    return declaration, case, opened


def unique_open_case_index(database):
    """One open case per person and disease, enforced by the database (both engines support partial indexes)."""
    database.execute_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS risk_case_one_open ON risk_case (person_key, disease_id) "
        "WHERE closed_at IS NULL"
    )
