"""What every report shares: filters, columns, the registry, and how a scope becomes SQL."""

import dataclasses
import datetime

from peewee import SQL

from models.units import HealthUnit
from models.validation import FieldError
from models.validation import parse_date

# Vietnam has no daylight saving time: local midnight is 17:00 UTC the day before.
UTC_OFFSET = datetime.timedelta(hours=7)


def N_(message):
    """Mark a message for translation; the view or the export translates it when it is shown."""
    return message


FILTER_LABELS = {
    "date_from": N_("From"),
    "date_to": N_("To"),
    "ward": N_("Commune/ward"),
    "unit": N_("Health unit"),
    "vaccine": N_("Vaccine"),
    "disease": N_("Disease"),
}


@dataclasses.dataclass(frozen=True)
class Filters:
    """What a report is limited to, besides the scope; every field is optional."""

    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    ward: int | None = None
    unit: int | None = None
    vaccine: int | None = None
    disease: str | None = None

    @classmethod
    def from_mapping(cls, mapping, allowed=None):
        """Filters from strings (a query string, CLI options, a saved definition); FieldError on a bad value."""
        values = {}
        for name in FILTER_LABELS:
            if allowed is not None and name not in allowed:
                continue
            raw = mapping.get(name)
            raw = raw.strip() if isinstance(raw, str) else raw
            if raw in (None, ""):
                continue
            if name in ("date_from", "date_to"):
                values[name] = parse_date(raw, field=name)
            elif name == "disease":
                values[name] = str(raw)[:255]
            else:
                text = str(raw)
                if not text.isdigit() or len(text) > 10:
                    raise FieldError(name, N_("Choose a value from the list."))
                values[name] = int(text)
        if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
            raise FieldError("date_to", N_("The end of the period is before its start."))
        return cls(**values)

    def as_strings(self):
        """The filters that are set, as strings (query strings, job parameters, the audit log)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = value.isoformat() if isinstance(value, datetime.date) else str(value)
        return out

    def merged(self, other):
        """These filters with every filter set in other on top."""
        return dataclasses.replace(self, **{k: v for k, v in dataclasses.asdict(other).items() if v is not None})

    def utc_bounds(self):
        """The period as [start, end) naive UTC datetimes for timestamp columns; None where open."""
        start = end = None
        if self.date_from:
            start = datetime.datetime.combine(self.date_from, datetime.time()) - UTC_OFFSET
        if self.date_to:
            end = datetime.datetime.combine(self.date_to + datetime.timedelta(days=1), datetime.time()) - UTC_OFFSET
        return start, end


@dataclasses.dataclass(frozen=True)
class Column:
    """A column of a report: its key in the DataFrame, its label and how its numbers are shown."""

    key: str
    label: str
    kind: str = "text"  # text, int, percent (0-100), float, date


@dataclasses.dataclass(frozen=True)
class Chart:
    """A horizontal bar chart drawn from a report's rows."""

    title: str
    label_keys: tuple
    value_key: str
    percent: bool = False


@dataclasses.dataclass(frozen=True)
class Report:
    """A named report: run(scope, filters) returns a pandas DataFrame whose columns are `columns`."""

    name: str
    title: str
    description: str
    columns: tuple
    filters: tuple
    run: object
    requires: tuple = ()  # extra (action, resource) permissions, beyond viewing reports
    chart: Chart | None = None
    saved: bool = False

    def labels(self):
        return {c.key: c.label for c in self.columns}


REGISTRY = {}


def register(report):
    """Add a built-in report to the registry."""
    REGISTRY[report.name] = report
    return report


def scope_wards(scope, filters):
    """The ward codes a report covers: the scope, narrowed by the commune and unit filters; None means all."""
    wards = None if scope.is_everything else set(scope.ward_codes)
    if filters.ward is not None:
        wards = {filters.ward} if wards is None else wards & {filters.ward}
    if filters.unit is not None:
        unit = HealthUnit.get_or_none(HealthUnit.id == filters.unit)
        covered = set(unit.jurisdiction()) if unit else set()
        wards = covered if wards is None else wards & covered
    return None if wards is None else frozenset(wards)


def in_wards(field, wards):
    """A WHERE condition keeping rows whose ward is among wards; None when every ward is kept."""
    if wards is None:
        return None
    if not wards:
        return SQL("1 = 0")
    return field.in_(sorted(wards))


def where_all(query, *conditions):
    """query restricted by every condition that is not None."""
    conditions = [c for c in conditions if c is not None]
    for condition in conditions:
        query = query.where(condition)
    return query


def in_period(field, filters):
    """Conditions keeping dates (a DateField) within the filters' period."""
    return (
        field >= filters.date_from if filters.date_from else None,
        field <= filters.date_to if filters.date_to else None,
    )


def in_utc_period(field, filters):
    """Conditions keeping timestamps (naive UTC) within the filters' period, taken in Vietnam time."""
    start, end = filters.utc_bounds()
    return (field >= start if start else None, field < end if end else None)


def percent(part, whole):
    """part / whole in percent, 0 when whole is 0; rounded to 0.01."""
    return round(part * 100.0 / whole, 2) if whole else 0.0
