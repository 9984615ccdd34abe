"""Staff activity from the audit log: views, searches, changes and exports per account and unit."""

import pandas as pd
from peewee import Case
from peewee import fn

from models.audit import Action
from models.audit import AuditEvent
from models.units import HealthUnit
from models.units import UnitWard
from reports.base import N_
from reports.base import Chart
from reports.base import Column
from reports.base import Report
from reports.base import in_utc_period
from reports.base import register
from reports.base import where_all

COLUMNS = (
    Column("account", N_("Account")),
    Column("unit_code", N_("Unit code")),
    Column("unit", N_("Health unit")),
    Column("views", N_("Record views"), "int"),
    Column("searches", N_("Searches"), "int"),
    Column("changes", N_("Changes"), "int"),
    Column("exports", N_("Exports"), "int"),
    Column("total", N_("Total"), "int"),
)


def counted(actions):
    return fn.SUM(Case(None, [(AuditEvent.action.in_(actions), 1)], 0))


def units_in_scope(scope):
    """Codes of the units whose own communes lie in the scope; None when the scope is everything."""
    if scope.is_everything:
        return None
    inside = UnitWard.select(UnitWard.unit).where(UnitWard.ward.in_(sorted(scope.ward_codes)))
    return {code for (code,) in HealthUnit.select(HealthUnit.code).where(HealthUnit.id.in_(inside)).tuples()}


def activity(scope, filters):
    """One row per staff account and unit with their activity in the period."""
    units = units_in_scope(scope)
    if filters.unit is not None:
        unit = HealthUnit.get_or_none(HealthUnit.id == filters.unit)
        below = unit.descendant_ids() if unit else set()
        chosen = {c for (c,) in HealthUnit.select(HealthUnit.code).where(HealthUnit.id.in_(sorted(below))).tuples()}
        units = chosen if units is None else units & chosen
    query = (
        AuditEvent.select(
            AuditEvent.actor,
            AuditEvent.unit_code,
            counted([Action.VIEW]),
            counted([Action.SEARCH]),
            counted(list(Action.CHANGES)),
            counted([Action.EXPORT]),
        )
        .where(AuditEvent.actor_id.is_null(False))
        .group_by(AuditEvent.actor, AuditEvent.unit_code)
    )
    conditions = list(in_utc_period(AuditEvent.at, filters))
    if units is not None:
        conditions.append(AuditEvent.unit_code.in_(sorted(units)) if units else AuditEvent.id < 0)
    rows = list(where_all(query, *conditions).tuples())
    codes = sorted({row[1] for row in rows if row[1]})
    names = dict(HealthUnit.select(HealthUnit.code, HealthUnit.name).where(HealthUnit.code.in_(codes)).tuples())
    records = []
    for account, unit_code, views, searches, changes, exports in rows:
        counts = [int(views or 0), int(searches or 0), int(changes or 0), int(exports or 0)]
        if not any(counts):
            continue  # only sign-ins and password changes
        records.append(
            {
                "account": account,
                "unit_code": unit_code or "",
                "unit": names.get(unit_code, ""),
                "views": counts[0],
                "searches": counts[1],
                "changes": counts[2],
                "exports": counts[3],
                "total": sum(counts),
            }
        )
    frame = pd.DataFrame(records, columns=[c.key for c in COLUMNS])
    return frame.sort_values(["unit_code", "account"], ignore_index=True)


register(
    Report(
        name="activity",
        title=N_("Staff activity"),
        description=N_("Record views, searches, changes and exports per staff account and unit, from the audit log."),
        columns=COLUMNS,
        filters=("date_from", "date_to", "unit"),
        run=activity,
        requires=(("view", "audit"),),
        chart=Chart(N_("Activity per account"), ("account",), "total"),
    )
)
