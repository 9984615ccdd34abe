"""Line lists: every row of a dataset in a scope (a million citizens), read in constant memory.

Rows are read in keyset pages of PAGE_ROWS ordered by id: each page is one short query whose
rows are iterated without being kept (`.tuples().iterator()`), so neither the client nor a long
transaction holds the table, on SQLite or PostgreSQL.
"""

import dataclasses

from peewee import Cast

from models.citizens import Citizen
from models.places import Ward
from reports.base import N_
from reports.base import in_wards
from reports.base import scope_wards
from reports.base import where_all

PAGE_ROWS = 5_000


@dataclasses.dataclass(frozen=True)
class LineList:
    """A dataset exported row by row: its columns (key, label, width) and how to read it."""

    name: str
    title: str
    columns: tuple
    filters: tuple
    select: object  # callable() -> the column expressions, id first
    model: object
    ward_field: object

    def query(self, scope, filters):
        wards = scope_wards(scope, filters)
        return where_all(self.model.select(*self.select()), in_wards(self.ward_field, wards))

    def count(self, scope, filters):
        wards = scope_wards(scope, filters)
        return where_all(self.model.select(), in_wards(self.ward_field, wards)).count()

    def rows(self, scope, filters, page_rows=PAGE_ROWS):
        """Every row as a tuple without its id, in id order, one keyset page at a time."""
        ward_names = WardNames()
        base = self.query(scope, filters).order_by(self.model.id).limit(page_rows)
        last_id = 0
        while True:
            seen = 0
            for row in base.where(self.model.id > last_id).tuples().iterator():
                seen += 1
                last_id = row[0]
                yield _citizen_row(row, ward_names)
            if seen < page_rows:
                return


class WardNames(dict):
    """Commune names read once each, as the rows meet them."""

    def __missing__(self, code):
        ward = Ward.select(Ward.name).where(Ward.code == code).tuples().first() if code is not None else None
        self[code] = ward[0] if ward else None
        return self[code]


def _day_month_year(text):
    """YYYY-MM-DD (as the database casts a date to text) to dd/mm/yyyy."""
    return f"{text[8:10]}/{text[5:7]}/{text[0:4]}" if text else None


GENDER_LABELS = {"M": "Nam", "F": "Nữ"}


def _citizen_row(row, ward_names):
    (_id, name, born, gender, phone, national_id, insurance, health_code, ward, address) = row
    return (
        health_code,
        name,
        _day_month_year(born),
        GENDER_LABELS.get(gender, gender),
        phone,
        national_id,
        insurance,
        ward,
        ward_names[ward],
        address,
    )


def _citizen_columns():
    return (
        Citizen.id,
        Citizen.full_name,
        # As text: no date parsing per row on the Python side (the export needs text anyway).
        Cast(Citizen.date_of_birth, "TEXT"),
        Citizen.gender,
        Citizen.phone,
        Citizen.national_id,
        Citizen.insurance_number,
        Citizen.health_code,
        Citizen.ward,
        Citizen.permanent_address,
    )


CITIZENS = LineList(
    name="citizens",
    title=N_("Citizens"),
    columns=(
        ("health_code", N_("Personal health code"), 18),
        ("full_name", N_("Full name"), 28),
        ("date_of_birth", N_("Date of birth"), 12),
        ("gender", N_("Gender"), 8),
        ("phone", N_("Phone"), 13),
        ("national_id", N_("ID number"), 15),
        ("insurance_number", N_("Insurance number"), 18),
        ("ward_code", N_("Commune code"), 10),
        ("commune", N_("Commune/ward"), 24),
        ("permanent_address", N_("Permanent address"), 40),
    ),
    filters=("ward", "unit"),
    select=_citizen_columns,
    model=Citizen,
    ward_field=Citizen.ward,
)

LINE_LISTS = {CITIZENS.name: CITIZENS}
