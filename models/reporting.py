"""Saved reports of the report builder and the dashboard's pre-aggregated figures."""

import json

from peewee import BigIntegerField
from peewee import CharField
from peewee import DateTimeField
from peewee import FloatField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import TextField

from models.accounts import Staff
from models.base import BaseModel
from models.base import utcnow
from models.places import Ward
from models.records import Vaccine


class SavedReport(BaseModel):
    """A report defined in the builder: a dataset, group-by fields, measures and fixed filters."""

    name = CharField(max_length=64, unique=True)
    title = CharField(max_length=255)
    dataset = CharField(max_length=32)
    group_by = TextField(default="[]")
    measures = TextField(default="[]")
    filters = TextField(default="{}")
    owner = ForeignKeyField(Staff, null=True, backref="saved_reports", on_delete="RESTRICT")

    def __str__(self):
        return self.title

    @property
    def definition(self):
        """The builder's definition as plain data."""
        return {
            "dataset": self.dataset,
            "group_by": json.loads(self.group_by or "[]"),
            "measures": json.loads(self.measures or "[]"),
            "filters": json.loads(self.filters or "{}"),
        }


class WardFigures(BaseModel):
    """One commune's population and data gaps, as of the last dashboard refresh."""

    ward = ForeignKeyField(Ward, primary_key=True, on_delete="CASCADE")
    population = BigIntegerField(default=0)
    missing_phone = BigIntegerField(default=0)
    missing_health_code = BigIntegerField(default=0)
    missing_insurance = BigIntegerField(default=0)
    missing_national_id = BigIntegerField(default=0)
    complete = BigIntegerField(default=0)


class WardVaccineFigures(BaseModel):
    """People of one commune who received a given dose of a vaccine, as of the last refresh."""

    ward = ForeignKeyField(Ward, on_delete="CASCADE")
    vaccine = ForeignKeyField(Vaccine, on_delete="CASCADE")
    dose_number = IntegerField()
    people = BigIntegerField(default=0)

    class Meta:
        indexes = ((("ward", "vaccine", "dose_number"), True),)


class WardDayFigures(BaseModel):
    """Counts per commune and day of one kind of event (e.g. risk declarations), for the dashboard."""

    ward = ForeignKeyField(Ward, on_delete="CASCADE")
    kind = CharField(max_length=32)
    day = CharField(max_length=10)
    count = BigIntegerField(default=0)

    class Meta:
        indexes = ((("kind", "day", "ward"), True),)


class DashboardRefresh(BaseModel):
    """When the dashboard's figures were last computed, and how long it took."""

    refreshed_at = DateTimeField(default=utcnow, index=True)
    seconds = FloatField(default=0)

    @classmethod
    def latest(cls):
        return cls.select().order_by(cls.refreshed_at.desc(), cls.id.desc()).first()
