"""A citizen's health record: conditions, allergies, encounters and vaccinations."""

import re

from flask_babel import lazy_gettext as _l
from peewee import JOIN
from peewee import BooleanField
from peewee import CharField
from peewee import DateField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import TextField

from models.base import BaseModel
from models.base import PreparedQuery
from models.base import utcnow
from models.citizens import Citizen
from models.units import HealthUnit
from models.validation import FieldError
from models.validation import parse_date

ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
CONDITION_KINDS = (("chronic", _l("Chronic condition")), ("history", _l("Medical history")))
SEVERITIES = (("mild", _l("Mild")), ("moderate", _l("Moderate")), ("severe", _l("Severe")))


def _icd10(value, field="icd10_code"):
    value = (value or "").strip().upper() or None
    if value and not ICD10.match(value):
        raise FieldError(field, _l("An ICD-10 code looks like A09 or J45.9."))
    return value


def _not_in_future(value, field):
    value = parse_date(value, field=field)
    if value and value > utcnow().date():
        raise FieldError(field, _l("The date cannot be in the future."))
    return value


class CitizenPart(BaseModel):
    """A part of one citizen's record; scope follows the citizen."""

    @classmethod
    def in_scope(cls, scope, query=None):
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        # A subquery, not a join: the caller's query may already join Citizen.
        return query.where(cls.citizen.in_(Citizen.in_scope(scope, Citizen.select(Citizen.id))))

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)

    def clean(self):
        """Normalise fields; raise FieldError naming the first bad one."""


class Condition(CitizenPart):
    citizen = ForeignKeyField(Citizen, backref="conditions", on_delete="RESTRICT")
    kind = CharField(max_length=16, choices=CONDITION_KINDS, default="chronic")
    name = CharField(max_length=255)
    icd10_code = CharField(max_length=8, null=True)
    since = DateField(null=True)
    notes = TextField(null=True)

    def __str__(self):
        return self.name

    def clean(self):
        self.name = (self.name or "").strip()
        if not self.name:
            raise FieldError("name", _l("The condition's name is required."))
        self.icd10_code = _icd10(self.icd10_code)
        self.since = _not_in_future(self.since, "since")


class Allergy(CitizenPart):
    citizen = ForeignKeyField(Citizen, backref="allergies", on_delete="RESTRICT")
    substance = CharField(max_length=255)
    reaction = CharField(max_length=255, null=True)
    severity = CharField(max_length=16, choices=SEVERITIES, null=True)

    def __str__(self):
        return self.substance

    def clean(self):
        self.substance = (self.substance or "").strip()
        if not self.substance:
            raise FieldError("substance", _l("The substance is required."))


class Encounter(CitizenPart):
    """One visit to a facility, as sent by hospitals and health centres."""

    # Both foreign keys lead an index of Meta: a single-column index of their own would be redundant.
    citizen = ForeignKeyField(Citizen, backref="encounters", on_delete="RESTRICT", index=False)
    facility = ForeignKeyField(HealthUnit, null=True, backref="encounters", on_delete="RESTRICT", index=False)
    facility_name = CharField(max_length=255, null=True)
    visit_id = CharField(max_length=64, null=True)
    date = DateField()
    icd10_code = CharField(max_length=8, null=True)
    diagnosis = CharField(max_length=255, null=True)
    summary = TextField(null=True)

    class Meta:
        indexes = ((("citizen", "date"), False), (("facility", "visit_id"), True))

    def __str__(self):
        return f"{self.date} {self.diagnosis or ''}".strip()

    def clean(self):
        self.date = _not_in_future(self.date, "date")
        if self.date is None:
            raise FieldError("date", _l("The visit date is required."))
        self.icd10_code = _icd10(self.icd10_code)
        if self.facility_id is None and not (self.facility_name or "").strip():
            raise FieldError("facility", _l("Choose the facility or type its name."))


class Vaccine(BaseModel):
    """A vaccine and its schedule, configured in the back office."""

    code = CharField(max_length=32, unique=True)
    name = CharField(max_length=255)
    disease = CharField(max_length=255)
    doses_in_schedule = IntegerField(default=1)
    boosters_allowed = BooleanField(default=False)
    active = BooleanField(default=True)

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not 1 <= (self.doses_in_schedule or 0) <= 10:
            raise FieldError("doses_in_schedule", _l("The schedule has between 1 and 10 doses."))
        return super().save(*args, **kwargs)


class Vaccination(CitizenPart):
    # Both lead an index of Meta, as for encounters.
    citizen = ForeignKeyField(Citizen, backref="vaccinations", on_delete="RESTRICT", index=False)
    vaccine = ForeignKeyField(Vaccine, backref="doses", on_delete="RESTRICT", index=False)
    dose_number = IntegerField()
    date = DateField()
    site = ForeignKeyField(HealthUnit, null=True, backref="vaccinations", on_delete="RESTRICT")
    lot = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("citizen", "vaccine", "dose_number"), True), (("vaccine", "date"), False))

    def __str__(self):
        return f"{self.vaccine.name} #{self.dose_number}"

    def clean(self):
        self.date = _not_in_future(self.date, "date")
        if self.date is None:
            raise FieldError("date", _l("The vaccination date is required."))
        vaccine = Vaccine.get_by_id(self.vaccine_id) if self.vaccine_id else None
        if vaccine is None:
            raise FieldError("vaccine", _l("Choose a vaccine."))
        limit = vaccine.doses_in_schedule + (5 if vaccine.boosters_allowed else 0)
        if not 1 <= (self.dose_number or 0) <= limit:
            raise FieldError("dose_number", _l("The dose number must be between 1 and %(n)s.", n=limit))


def vaccination_status(citizen, doses=None):
    """Per active vaccine: (vaccine, doses received) for the citizen, every vaccine listed.

    doses: the citizen's vaccinations when the caller has them already (saves a query).
    """
    if doses is None:
        doses = Vaccination.select(Vaccination.vaccine, Vaccination.dose_number).where(Vaccination.citizen == citizen)
    received = {}
    for dose in doses:
        received[dose.vaccine_id] = max(received.get(dose.vaccine_id, 0), dose.dose_number)
    return [(v, received.get(v.id, 0)) for v in _ACTIVE_VACCINES()]


# The record pages' queries, over the columns they show, each composed once (PreparedQuery):
# the citizen's page is the portal's hottest read.
_ACTIVE_VACCINES = PreparedQuery(
    lambda: Vaccine.select(Vaccine.id, Vaccine.code, Vaccine.name).where(Vaccine.active).order_by(Vaccine.name)
)
_MEMBERS = PreparedQuery(
    lambda household_id: (
        Citizen.select(Citizen.id, Citizen.full_name, Citizen.date_of_birth, Citizen.relation_to_head)
        .where(Citizen.household == household_id)
        .order_by(Citizen.date_of_birth, Citizen.id)
    )
)
_CONDITIONS = PreparedQuery(
    lambda citizen_id: (
        Condition.select(Condition.id, Condition.name, Condition.icd10_code, Condition.since)
        .where(Condition.citizen == citizen_id)
        .order_by(Condition.id)
    )
)
_ALLERGIES = PreparedQuery(
    lambda citizen_id: (
        Allergy.select(Allergy.id, Allergy.substance, Allergy.reaction)
        .where(Allergy.citizen == citizen_id)
        .order_by(Allergy.id)
    )
)
_ENCOUNTERS = PreparedQuery(
    lambda citizen_id: (
        Encounter.select(
            Encounter.id,
            Encounter.date,
            Encounter.facility,
            Encounter.facility_name,
            Encounter.icd10_code,
            Encounter.diagnosis,
            HealthUnit.id,
            HealthUnit.name,
        )
        .join(HealthUnit, JOIN.LEFT_OUTER, on=(Encounter.facility == HealthUnit.id))
        .where(Encounter.citizen == citizen_id)
        .order_by(Encounter.date.desc(), Encounter.id.desc())
    )
)


def _vaccinations(citizen_id):
    site = HealthUnit.alias()
    return (
        Vaccination.select(
            Vaccination.id,
            Vaccination.vaccine,
            Vaccination.dose_number,
            Vaccination.date,
            Vaccination.site,
            Vaccination.lot,
            Vaccine.id,
            Vaccine.name,
            site.id,
            site.name,
        )
        .join_from(Vaccination, Vaccine)
        .join_from(Vaccination, site, JOIN.LEFT_OUTER, on=(Vaccination.site == site.id))
        .where(Vaccination.citizen == citizen_id)
        .order_by(Vaccination.date, Vaccination.id)
    )


_VACCINATIONS = PreparedQuery(_vaccinations)


def record_of(citizen, with_family=True):
    """The parts of one citizen's health record, each newest or most relevant first."""
    vaccinations = _VACCINATIONS(citizen.id)
    return {
        "members": _MEMBERS(citizen.household_id) if citizen.household_id else [],
        "family": citizen.family() if with_family else [],
        "conditions": _CONDITIONS(citizen.id),
        "allergies": _ALLERGIES(citizen.id),
        "encounters": _ENCOUNTERS(citizen.id),
        "vaccinations": vaccinations,
        "vaccine_status": vaccination_status(citizen, vaccinations),
    }
