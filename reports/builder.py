"""The low-code report builder: datasets, their group-by fields and measures, and saved reports."""

import dataclasses
import json
import re

import pandas as pd
from peewee import Cast
from peewee import fn

from models.citizens import GENDERS
from models.citizens import Citizen
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.reporting import SavedReport
from models.risk import CaseStatus
from models.risk import Declaration
from models.risk import Disease
from models.risk import RiskCase
from models.risk import RiskLevel
from models.units import HealthUnit
from models.validation import FieldError
from reports.base import FILTER_LABELS
from reports.base import N_
from reports.base import REGISTRY
from reports.base import Chart
from reports.base import Column
from reports.base import Filters
from reports.base import Report
from reports.base import in_period
from reports.base import in_utc_period
from reports.base import in_wards
from reports.base import percent
from reports.base import scope_wards
from reports.base import where_all
from reports.coverage import ward_names
from reports.declarations import local_day

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
MAX_GROUPS = 100_000
# Paths of the report pages that a saved report's name must not hide.
RESERVED_NAMES = {"builder", "jobs", "lines", "dashboard"}


def _month(field):
    # A date as text is YYYY-MM-DD on both databases; its first 7 characters are the month.
    return fn.SUBSTR(Cast(field, "TEXT"), 1, 7)


def _year(field):
    return fn.SUBSTR(Cast(field, "TEXT"), 1, 4)


def _unit_names(ids):
    ids = sorted({i for i in ids if i is not None})
    return dict(HealthUnit.select(HealthUnit.id, HealthUnit.name).where(HealthUnit.id.in_(ids)).tuples()) if ids else {}


def _gender_names(values):
    return {code: label for code, label in GENDERS}


def _labels(labels):
    return lambda values: {code: str(label) for code, label in labels.items()}


@dataclasses.dataclass(frozen=True)
class GroupField:
    """A field rows can be grouped by: its SQL expression and, optionally, how codes become names."""

    key: str
    label: str
    expression: object
    names: object = None  # callable(values) -> {value: shown name}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Rows the builder can count: a query, the commune that scopes each row, and what it offers."""

    key: str
    label: str
    query: object  # callable() -> the base query, joined to whatever ward_field and person_field need
    date_field: object
    groups: tuple
    filters: tuple
    vaccine_field: object = None
    disease_field: object = None
    ward_field: object = Citizen.ward  # the commune that decides who may see the row
    person_field: object = Citizen.id  # what "distinct citizens" counts
    period: object = in_period  # (date_field, filters) -> conditions

    def group(self, key):
        for field in self.groups:
            if field.key == key:
                return field
        raise FieldError("group_by", N_("Unknown group-by field."))


COMMUNE = GroupField("commune", N_("Commune/ward"), Citizen.ward, ward_names)
DATASETS = {
    "citizens": Dataset(
        key="citizens",
        label=N_("Citizens"),
        query=lambda: Citizen.select(),
        date_field=None,
        groups=(
            COMMUNE,
            GroupField("gender", N_("Gender"), Citizen.gender, _gender_names),
            GroupField("birth_year", N_("Year of birth"), _year(Citizen.date_of_birth)),
            GroupField("ethnicity", N_("Ethnicity"), Citizen.ethnicity),
            GroupField("occupation", N_("Occupation"), Citizen.occupation),
        ),
        filters=("ward", "unit"),
    ),
    "vaccinations": Dataset(
        key="vaccinations",
        label=N_("Vaccinations"),
        query=lambda: Vaccination.select().join(Citizen).switch(Vaccination).join(Vaccine),
        date_field=Vaccination.date,
        groups=(
            COMMUNE,
            GroupField("vaccine", N_("Vaccine"), Vaccine.name),
            GroupField("disease", N_("Disease"), Vaccine.disease),
            GroupField("dose_number", N_("Dose"), Vaccination.dose_number),
            GroupField("month", N_("Month"), _month(Vaccination.date)),
            GroupField("site", N_("Vaccination site"), Vaccination.site, _unit_names),
            GroupField("gender", N_("Gender"), Citizen.gender, _gender_names),
        ),
        filters=("date_from", "date_to", "ward", "unit", "vaccine", "disease"),
        vaccine_field=Vaccination.vaccine,
        disease_field=Vaccine.disease,
    ),
    "encounters": Dataset(
        key="encounters",
        label=N_("Encounters"),
        query=lambda: Encounter.select().join(Citizen),
        date_field=Encounter.date,
        groups=(
            COMMUNE,
            GroupField("facility", N_("Facility"), Encounter.facility, _unit_names),
            GroupField("icd10_code", N_("ICD-10 code"), Encounter.icd10_code),
            GroupField("diagnosis", N_("Diagnosis"), Encounter.diagnosis),
            GroupField("month", N_("Month"), _month(Encounter.date)),
            GroupField("gender", N_("Gender"), Citizen.gender, _gender_names),
        ),
        filters=("date_from", "date_to", "ward", "unit"),
    ),
    # Declarations name a person who may have no citizen record yet: their own commune scopes
    # them, and a person is the case's person key (one per person and disease).
    "declarations": Dataset(
        key="declarations",
        label=N_("Risk declarations"),
        query=lambda: Declaration.select().join(RiskCase).join(Disease),
        date_field=Declaration.declared_at,
        groups=(
            GroupField("commune", N_("Commune/ward"), Declaration.ward, ward_names),
            GroupField("risk_level", N_("Risk level"), Declaration.risk_level, _labels(RiskLevel.LABELS)),
            GroupField("status", N_("Case status"), RiskCase.status, _labels(CaseStatus.LABELS)),
            GroupField("disease", N_("Disease"), Disease.name),
            GroupField("day", N_("Day"), local_day(Declaration.declared_at)),
        ),
        filters=("date_from", "date_to", "ward", "unit", "disease"),
        disease_field=Disease.name,
        ward_field=Declaration.ward,
        person_field=RiskCase.person_key,
        period=in_utc_period,
    ),
}

MEASURES = {
    "count": N_("Count"),
    "distinct": N_("Distinct citizens"),
    "share": N_("Share of total (percent)"),
}


def validate(name, title, dataset, group_by, measures, filters):
    """A clean definition, or FieldError naming the first bad field."""
    name = (name or "").strip().lower()
    if not NAME.match(name):
        raise FieldError("name", N_("Use 2 to 63 lowercase letters, digits, '-' or '_'."))
    if name in REGISTRY or name in RESERVED_NAMES:
        raise FieldError("name", N_("A built-in report has this name."))
    title = " ".join((title or "").split())[:255]
    if not title:
        raise FieldError("title", N_("The title is required."))
    if dataset not in DATASETS:
        raise FieldError("dataset", N_("Choose a dataset."))
    chosen = DATASETS[dataset]
    group_by = list(dict.fromkeys(group_by or ()))
    if not group_by:
        raise FieldError("group_by", N_("Choose at least one field to group by."))
    for key in group_by:
        chosen.group(key)
    measures = [m for m in dict.fromkeys(measures or ()) if m]
    if not measures or any(m not in MEASURES for m in measures):
        raise FieldError("measures", N_("Choose at least one measure."))
    clean_filters = Filters.from_mapping(filters or {}, allowed=chosen.filters).as_strings()
    return {
        "name": name,
        "title": title,
        "dataset": dataset,
        "group_by": group_by,
        "measures": measures,
        "filters": clean_filters,
    }


def columns_of(definition):
    dataset = DATASETS[definition["dataset"]]
    columns = []
    for key in definition["group_by"]:
        if key == "commune":
            columns.append(Column("ward_code", N_("Commune code")))
        columns.append(Column(key, dataset.group(key).label))
    for measure in definition["measures"]:
        columns.append(Column(measure, MEASURES[measure], "percent" if measure == "share" else "int"))
    return tuple(columns)


def run_definition(definition, scope, filters):
    """Group the dataset in the database as the definition says; a DataFrame of columns_of(definition)."""
    dataset = DATASETS[definition["dataset"]]
    filters = Filters.from_mapping(definition.get("filters") or {}, allowed=dataset.filters).merged(filters)
    groups = [dataset.group(key) for key in definition["group_by"]]
    selected = [g.expression.alias(f"g{i}") for i, g in enumerate(groups)]
    selected.append(fn.COUNT(dataset.person_field).alias("n"))
    selected.append(fn.COUNT(dataset.person_field.distinct()).alias("d"))
    query = dataset.query().select(*selected).group_by(*[g.expression for g in groups])
    conditions = [in_wards(dataset.ward_field, scope_wards(scope, filters))]
    if dataset.date_field is not None:
        conditions.extend(dataset.period(dataset.date_field, filters))
    if dataset.vaccine_field is not None and filters.vaccine is not None:
        conditions.append(dataset.vaccine_field == filters.vaccine)
    if dataset.disease_field is not None and filters.disease:
        conditions.append(dataset.disease_field == filters.disease)
    rows = list(where_all(query, *conditions).limit(MAX_GROUPS).tuples())
    total = sum(row[-2] for row in rows)
    lookups = {
        i: g.names([row[i] for row in rows]) if g.names else None for i, g in enumerate(groups) if g.names is not None
    }
    records = []
    for row in rows:
        record = {}
        for i, group in enumerate(groups):
            value = row[i]
            if group.key == "commune":
                record["ward_code"] = value
            shown = lookups[i].get(value, value) if i in lookups else value
            record[group.key] = "" if shown is None else shown
        for measure in definition["measures"]:
            record[measure] = {"count": row[-2], "distinct": row[-1], "share": percent(row[-2], total)}[measure]
        records.append(record)
    columns = columns_of(definition)
    frame = pd.DataFrame(records, columns=[c.key for c in columns])
    return frame.sort_values([c.key for c in columns[: len(groups)]], ignore_index=True, key=_sortable)


def _sortable(series):
    return series.map(lambda v: (0, v) if isinstance(v, int | float) else (1, str(v)))


def as_report(saved):
    """A saved definition as a Report, listed and run like a built-in one."""
    definition = saved.definition
    dataset = DATASETS.get(definition["dataset"])
    if dataset is None:
        return None
    columns = columns_of(definition)
    group_keys = tuple(definition["group_by"])
    return Report(
        name=saved.name,
        title=saved.title,
        description=N_("Defined in the report builder."),
        columns=columns,
        filters=dataset.filters,
        run=lambda scope, filters: run_definition(definition, scope, filters),
        chart=Chart(saved.title, group_keys, definition["measures"][0], percent=definition["measures"][0] == "share"),
        saved=True,
    )


def saved_reports():
    """Every saved report, as Reports, by title."""
    found = [as_report(s) for s in SavedReport.select().order_by(SavedReport.title)]
    return [r for r in found if r is not None]


def save(definition, owner=None):
    """Store a validated definition under its name (replacing the same name)."""
    fields = {
        "title": definition["title"],
        "dataset": definition["dataset"],
        "group_by": json.dumps(definition["group_by"]),
        "measures": json.dumps(definition["measures"]),
        "filters": json.dumps(definition["filters"], sort_keys=True),
    }
    existing = SavedReport.get_or_none(SavedReport.name == definition["name"])
    if existing is None:
        return SavedReport.create(name=definition["name"], owner=owner, **fields)
    for key, value in fields.items():
        setattr(existing, key, value)
    existing.save()
    return existing


def describe_filters(filters_dict):
    """(label, value) pairs of a filters dict, for display."""
    return [(FILTER_LABELS[k], v) for k, v in filters_dict.items() if k in FILTER_LABELS]
