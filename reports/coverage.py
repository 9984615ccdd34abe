"""Vaccination coverage by commune × vaccine × dose: people and share of the commune's population."""

import pandas as pd
from peewee import fn

from models.citizens import Citizen
from models.places import Ward
from models.records import Vaccination
from models.records import Vaccine
from reports.base import N_
from reports.base import Chart
from reports.base import Column
from reports.base import Report
from reports.base import in_period
from reports.base import in_wards
from reports.base import percent
from reports.base import register
from reports.base import scope_wards
from reports.base import where_all

COLUMNS = (
    Column("ward_code", N_("Commune code")),
    Column("commune", N_("Commune/ward")),
    Column("vaccine", N_("Vaccine")),
    Column("disease", N_("Disease")),
    Column("dose_number", N_("Dose"), "int"),
    Column("people", N_("People vaccinated"), "int"),
    Column("population", N_("Population"), "int"),
    Column("coverage", N_("Coverage (percent of population)"), "percent"),
)


def vaccine_condition(filters):
    """Conditions on Vaccine for the vaccine and disease filters."""
    return (
        Vaccine.id == filters.vaccine if filters.vaccine is not None else None,
        Vaccine.disease == filters.disease if filters.disease else None,
    )


def doses_by_commune(wards, filters):
    """(ward, vaccine id, dose number, people) grouped in the database.

    Each (citizen, vaccine, dose) is unique, so counting rows counts people.
    """
    query = (
        Vaccination.select(Citizen.ward, Vaccination.vaccine, Vaccination.dose_number, fn.COUNT(Vaccination.id))
        .join(Citizen, on=(Vaccination.citizen == Citizen.id))
        .group_by(Citizen.ward, Vaccination.vaccine, Vaccination.dose_number)
    )
    conditions = [in_wards(Citizen.ward, wards), *in_period(Vaccination.date, filters)]
    if filters.vaccine is not None:
        conditions.append(Vaccination.vaccine == filters.vaccine)
    if filters.disease:
        conditions.append(Vaccination.vaccine.in_(Vaccine.select(Vaccine.id).where(Vaccine.disease == filters.disease)))
    return where_all(query, *conditions).tuples()


def population_by_commune(wards):
    """{ward code: residents} grouped in the database."""
    query = Citizen.select(Citizen.ward, fn.COUNT(Citizen.id)).group_by(Citizen.ward)
    return dict(where_all(query, in_wards(Citizen.ward, wards)).tuples())


def ward_names(codes):
    """{ward code: name} for the given codes."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    return dict(Ward.select(Ward.code, Ward.name).where(Ward.code.in_(codes)).tuples())


def coverage(scope, filters):
    """One row per commune, vaccine and dose given in the scope and period."""
    wards = scope_wards(scope, filters)
    doses = list(doses_by_commune(wards, filters))
    population = population_by_commune(wards)
    names = ward_names(row[0] for row in doses)
    vaccines = {v.id: v for v in Vaccine.select(Vaccine.id, Vaccine.name, Vaccine.disease)}
    rows = []
    for ward_code, vaccine_id, dose, people in doses:
        vaccine = vaccines[vaccine_id]
        residents = population.get(ward_code, 0)
        rows.append(
            {
                "ward_code": ward_code,
                "commune": names.get(ward_code, str(ward_code)),
                "vaccine": vaccine.name,
                "disease": vaccine.disease,
                "dose_number": dose,
                "people": people,
                "population": residents,
                "coverage": percent(people, residents),
            }
        )
    frame = pd.DataFrame(rows, columns=[c.key for c in COLUMNS])
    return frame.sort_values(["commune", "ward_code", "vaccine", "dose_number"], ignore_index=True)


register(
    Report(
        name="coverage",
        title=N_("Vaccination coverage"),
        description=N_("People vaccinated per commune, vaccine and dose, and their share of the commune's population."),
        columns=COLUMNS,
        filters=("date_from", "date_to", "ward", "unit", "vaccine", "disease"),
        run=coverage,
        chart=Chart(N_("Coverage by commune"), ("commune", "vaccine", "dose_number"), "coverage", percent=True),
    )
)
