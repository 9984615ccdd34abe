"""The back office's home: key figures of a scope, read from tables pre-aggregated per commune.

refresh() recomputes those tables (a background job, on a schedule: see STALE_AFTER); figures()
sums them over the scope's communes, which is a few hundred rows at most whatever the
population.
"""

import datetime
import time

from peewee import fn

from models.base import db
from models.base import utcnow
from models.places import Ward
from models.records import Vaccine
from models.reporting import DashboardRefresh
from models.reporting import WardDayFigures
from models.reporting import WardFigures
from models.reporting import WardVaccineFigures
from reports.base import N_
from reports.base import Filters
from reports.base import in_wards
from reports.base import percent
from reports.base import where_all
from reports.completeness import missing_by_commune
from reports.coverage import doses_by_commune

# Figures older than this are recomputed in the background when someone opens the dashboard.
STALE_AFTER = datetime.timedelta(minutes=15)
DECLARATIONS_DAYS = 60
INSERT_ROWS = 500


def refresh(now=None):
    """Recompute every pre-aggregated table in one transaction; return the DashboardRefresh row."""
    started = time.perf_counter()
    everything = Filters()
    completeness = list(missing_by_commune(None))
    doses = list(doses_by_commune(None, everything))
    days = list(declaration_days())
    with db.atomic():
        WardFigures.delete().execute()
        WardVaccineFigures.delete().execute()
        WardDayFigures.delete().execute()
        _insert(
            WardFigures,
            [
                {
                    "ward": ward,
                    "population": population,
                    "missing_phone": int(phone or 0),
                    "missing_health_code": int(code or 0),
                    "missing_insurance": int(insurance or 0),
                    "missing_national_id": int(national_id or 0),
                    "complete": int(complete or 0),
                }
                for ward, population, phone, code, insurance, national_id, complete in completeness
            ],
        )
        _insert(
            WardVaccineFigures,
            [{"ward": w, "vaccine": v, "dose_number": d, "people": n} for w, v, d, n in doses],
        )
        _insert(WardDayFigures, [{"ward": w, "kind": "declaration", "day": d, "count": n} for w, d, n in days])
        return DashboardRefresh.create(refreshed_at=now or utcnow(), seconds=round(time.perf_counter() - started, 3))


def _insert(model, rows):
    for start in range(0, len(rows), INSERT_ROWS):
        model.insert_many(rows[start : start + INSERT_ROWS]).execute()


def declaration_days():
    """(ward, day, declarations) over the last DECLARATIONS_DAYS days, when risk declarations exist."""
    try:
        from reports.declarations import declarations_by_ward_and_day
    except ImportError:
        return []
    return declarations_by_ward_and_day(DECLARATIONS_DAYS)


def is_stale(latest, now=None):
    return latest is None or latest.refreshed_at < (now or utcnow()) - STALE_AFTER


def figures(scope, vaccine_id=None):
    """What the dashboard shows for the scope: totals, coverage and completeness per commune."""
    wards = None if scope.is_everything else scope.ward_codes
    latest = DashboardRefresh.latest()
    rows = list(
        where_all(
            WardFigures.select(WardFigures, Ward.name).join(Ward).order_by(Ward.name),
            in_wards(WardFigures.ward, wards),
        ).objects()
    )
    totals = {
        key: sum(getattr(r, key) for r in rows)
        for key in (
            "population",
            "missing_phone",
            "missing_health_code",
            "missing_insurance",
            "missing_national_id",
            "complete",
        )
    }
    doses_query = where_all(
        WardVaccineFigures.select(WardVaccineFigures.vaccine, fn.SUM(WardVaccineFigures.people)).group_by(
            WardVaccineFigures.vaccine
        ),
        in_wards(WardVaccineFigures.ward, wards),
    )
    doses_per_vaccine = {v: int(n or 0) for v, n in doses_query.tuples()}
    vaccines = list(Vaccine.select().where(Vaccine.id.in_(list(doses_per_vaccine) or [0])).order_by(Vaccine.name))
    chosen = next((v for v in vaccines if v.id == vaccine_id), None)
    if chosen is None and vaccines:
        chosen = max(vaccines, key=lambda v: doses_per_vaccine[v.id])
    coverage = []
    if chosen is not None:
        people = dict(
            where_all(
                WardVaccineFigures.select(WardVaccineFigures.ward, WardVaccineFigures.people).where(
                    (WardVaccineFigures.vaccine == chosen.id)
                    & (WardVaccineFigures.dose_number == chosen.doses_in_schedule)
                ),
                in_wards(WardVaccineFigures.ward, wards),
            ).tuples()
        )
        coverage = [(r.ward.name, percent(people.get(r.ward_id, 0), r.population)) for r in rows]
    completeness = [(r.ward.name, percent(r.complete, r.population)) for r in rows]
    gaps = [
        (N_("Missing phone"), totals["missing_phone"]),
        (N_("Missing health code"), totals["missing_health_code"]),
        (N_("Missing insurance number"), totals["missing_insurance"]),
        (N_("Missing ID number"), totals["missing_national_id"]),
    ]
    declarations = list(
        where_all(
            WardDayFigures.select(WardDayFigures.day, fn.SUM(WardDayFigures.count))
            .where(WardDayFigures.kind == "declaration")
            .group_by(WardDayFigures.day)
            .order_by(WardDayFigures.day),
            in_wards(WardDayFigures.ward, wards),
        ).tuples()
    )
    return {
        "refreshed": latest,
        "communes": len(rows),
        "totals": totals,
        "doses": sum(doses_per_vaccine.values()),
        "vaccines": vaccines,
        "vaccine": chosen,
        "coverage": coverage,
        "completeness": completeness,
        "gaps": [(label, count, percent(count, totals["population"])) for label, count in gaps],
        "declarations": [(day, int(n or 0)) for day, n in declarations],
    }
