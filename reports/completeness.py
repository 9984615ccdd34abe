"""Data completeness by commune: residents missing a phone, a health code, an insurance or ID number."""

import pandas as pd
from peewee import Case
from peewee import fn

from models.citizens import Citizen
from reports.base import N_
from reports.base import Chart
from reports.base import Column
from reports.base import Report
from reports.base import in_wards
from reports.base import percent
from reports.base import register
from reports.base import scope_wards
from reports.base import where_all
from reports.coverage import ward_names

# The fields seed 002 asks the commune stations to fill, in the order of the paper form.
CHECKED_FIELDS = (
    ("missing_phone", Citizen.phone, N_("Missing phone")),
    ("missing_health_code", Citizen.health_code, N_("Missing health code")),
    ("missing_insurance", Citizen.insurance_number, N_("Missing insurance number")),
    ("missing_national_id", Citizen.national_id, N_("Missing ID number")),
)

COLUMNS = (
    Column("ward_code", N_("Commune code")),
    Column("commune", N_("Commune/ward")),
    Column("population", N_("Population"), "int"),
    *(Column(key, label, "int") for key, _field, label in CHECKED_FIELDS),
    Column("complete", N_("Complete records"), "int"),
    Column("complete_share", N_("Complete records (percent)"), "percent"),
)


def blank(field):
    """1 when the column is empty, else 0."""
    return Case(None, [(field.is_null() | (field == ""), 1)], 0)


def missing_by_commune(wards):
    """(ward, residents, missing per checked field..., complete) grouped in the database."""
    incomplete = None
    for _key, field, _label in CHECKED_FIELDS:
        condition = field.is_null() | (field == "")
        incomplete = condition if incomplete is None else incomplete | condition
    query = Citizen.select(
        Citizen.ward,
        fn.COUNT(Citizen.id),
        *(fn.SUM(blank(field)) for _key, field, _label in CHECKED_FIELDS),
        fn.SUM(Case(None, [(incomplete, 0)], 1)),
    ).group_by(Citizen.ward)
    return where_all(query, in_wards(Citizen.ward, wards)).tuples()


def completeness(scope, filters):
    """One row per commune of the scope that has residents."""
    rows = list(missing_by_commune(scope_wards(scope, filters)))
    names = ward_names(row[0] for row in rows)
    records = []
    for ward_code, population, *counts in rows:
        counts = [int(c or 0) for c in counts]
        record = {"ward_code": ward_code, "commune": names.get(ward_code, str(ward_code)), "population": population}
        record.update({key: counts[i] for i, (key, _f, _l) in enumerate(CHECKED_FIELDS)})
        record["complete"] = counts[-1]
        record["complete_share"] = percent(counts[-1], population)
        records.append(record)
    frame = pd.DataFrame(records, columns=[c.key for c in COLUMNS])
    return frame.sort_values(["commune", "ward_code"], ignore_index=True)


register(
    Report(
        name="completeness",
        title=N_("Data completeness"),
        description=N_("Residents per commune whose record lacks a phone, a health code, an insurance or ID number."),
        columns=COLUMNS,
        filters=("ward", "unit"),
        run=completeness,
        chart=Chart(N_("Complete records by commune"), ("commune",), "complete_share", percent=True),
    )
)
