"""Risk declarations by day × risk level × case status, and the median time to the first action.

The first action on a declaration is the first status change or assignment that staff made on
its case at or after the moment it was declared.
"""

import datetime
import statistics

import pandas as pd
from peewee import SQL
from peewee import fn

from models.base import is_postgres
from models.risk import CaseEvent
from models.risk import CaseStatus
from models.risk import Declaration
from models.risk import Disease
from models.risk import RiskCase
from models.risk import RiskLevel
from reports.base import N_
from reports.base import UTC_OFFSET
from reports.base import Chart
from reports.base import Column
from reports.base import Report
from reports.base import in_utc_period
from reports.base import in_wards
from reports.base import register
from reports.base import scope_wards
from reports.base import where_all

# The same English messages as models.risk's labels, so the catalog already translates them.
LEVEL_LABELS = {RiskLevel.LOW: N_("Low"), RiskLevel.MEDIUM: N_("Medium"), RiskLevel.HIGH: N_("High")}
STATUS_LABELS = {
    CaseStatus.NEW: N_("New"),
    CaseStatus.VERIFYING: N_("Verifying"),
    CaseStatus.HOME_MONITORING: N_("Monitoring at home"),
    CaseStatus.FACILITY_ISOLATION: N_("Isolated at a facility"),
    CaseStatus.HOSPITAL_REFERRAL: N_("Referred to hospital"),
    CaseStatus.CLEARED: N_("Closed: cleared"),
    CaseStatus.CONFIRMED: N_("Closed: confirmed case"),
    CaseStatus.UNREACHABLE: N_("Closed: unreachable"),
}

COLUMNS = (
    Column("day", N_("Day")),
    Column("risk_level", N_("Risk level"), "label"),
    Column("status", N_("Case status"), "label"),
    Column("declarations", N_("Declarations"), "int"),
    Column("acted_on", N_("Acted on"), "int"),
    Column("median_hours", N_("Median hours to first action"), "float"),
)


def local_day(field):
    """The Vietnam calendar day (YYYY-MM-DD) of a naive UTC timestamp, computed by the database."""
    hours = int(UTC_OFFSET.total_seconds() // 3600)
    if is_postgres():
        return fn.to_char(field + SQL(f"interval '{hours} hours'"), "YYYY-MM-DD")
    return fn.date(field, f"+{hours} hours")


def first_action():
    """A correlated subquery: when staff first acted on the declaration's case after it was declared."""
    return CaseEvent.select(fn.MIN(CaseEvent.at)).where(
        (CaseEvent.case == Declaration.case)
        & CaseEvent.kind.in_((CaseEvent.STATUS, CaseEvent.ASSIGNED))
        & CaseEvent.actor.is_null(False)
        & (CaseEvent.at >= Declaration.declared_at)
    )


def _conditions(scope, filters):
    conditions = [
        in_wards(Declaration.ward, scope_wards(scope, filters)),
        *in_utc_period(Declaration.declared_at, filters),
    ]
    if filters.disease:
        conditions.append(RiskCase.disease.in_(Disease.select(Disease.id).where(Disease.name == filters.disease)))
    return conditions


def declarations(scope, filters):
    """One row per day, risk level and current case status of the declarations in the scope."""
    day = local_day(Declaration.declared_at)
    counts = where_all(
        Declaration.select(day.alias("day"), Declaration.risk_level, RiskCase.status, fn.COUNT(Declaration.id))
        .join(RiskCase, on=(Declaration.case == RiskCase.id))
        .group_by(day, Declaration.risk_level, RiskCase.status),
        *_conditions(scope, filters),
    ).tuples()
    # The median needs each declaration's delay: one timestamp pair per declaration, no personal data.
    delays = where_all(
        Declaration.select(
            day.alias("day"), Declaration.risk_level, RiskCase.status, Declaration.declared_at, first_action()
        ).join(RiskCase, on=(Declaration.case == RiskCase.id)),
        *_conditions(scope, filters),
    ).tuples()
    hours = {}
    for day_value, level, status, declared_at, acted_at in delays:
        if acted_at is None:
            continue
        acted_at = _timestamp(acted_at)
        hours.setdefault((str(day_value), level, status), []).append(
            (acted_at - _timestamp(declared_at)).total_seconds() / 3600
        )
    rows = []
    for day_value, level, status, count in counts:
        waited = hours.get((str(day_value), level, status), [])
        rows.append(
            {
                "day": _day_text(day_value),
                "risk_level": LEVEL_LABELS.get(level, level),
                "status": STATUS_LABELS.get(status, status),
                "declarations": count,
                "acted_on": len(waited),
                "median_hours": round(statistics.median(waited), 2) if waited else None,
                "_rank": (
                    -RiskLevel.RANK.get(level, 0),
                    CaseStatus.ALL.index(status) if status in CaseStatus.ALL else 99,
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=[c.key for c in COLUMNS] + ["_rank"])
    frame = frame.sort_values(["day", "_rank"], ignore_index=True)
    return frame.drop(columns="_rank")


def _timestamp(value):
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


def _day_text(value):
    """YYYY-MM-DD to dd/mm/yyyy."""
    text = str(value)
    return f"{text[8:10]}/{text[5:7]}/{text[0:4]}"


def declarations_by_ward_and_day(days, now=None):
    """(ward, YYYY-MM-DD, declarations) over the last `days` days, for the dashboard."""
    from models.base import utcnow

    since = (now or utcnow()) - datetime.timedelta(days=days)
    day = local_day(Declaration.declared_at)
    query = (
        Declaration.select(Declaration.ward, day, fn.COUNT(Declaration.id))
        .where(Declaration.declared_at >= since)
        .group_by(Declaration.ward, day)
    )
    return [(ward, str(d), n) for ward, d, n in query.tuples()]


register(
    Report(
        name="declarations",
        title=N_("Risk declarations"),
        description=N_(
            "Declarations per day, risk level and case status, and the median time until staff first acted on them."
        ),
        columns=COLUMNS,
        filters=("date_from", "date_to", "ward", "unit", "disease"),
        run=declarations,
        chart=Chart(N_("Declarations per day"), ("day", "risk_level", "status"), "declarations"),
    )
)
