"""Reports: pure functions over the models that return peewee queries or pandas DataFrames.

They never import flask; views render and download what they return. Each named report takes a
scope (models.accounts.Scope) and Filters and returns a DataFrame grouped in the database.
"""

from reports import activity  # noqa: F401  (registers the report)
from reports import completeness  # noqa: F401
from reports import coverage  # noqa: F401
from reports import declarations  # noqa: F401
from reports.base import REGISTRY
from reports.base import Filters  # noqa: F401
from reports.base import Report  # noqa: F401
from reports.builder import as_report
from reports.builder import saved_reports


def built_in():
    """The built-in reports, in registry order."""
    return list(REGISTRY.values())


def all_reports():
    """Built-in reports, then those saved in the builder."""
    return built_in() + saved_reports()


def get_report(name):
    """The report with this name, built-in or saved, or None."""
    if name in REGISTRY:
        return REGISTRY[name]
    from models.reporting import SavedReport

    saved = SavedReport.get_or_none(SavedReport.name == name)
    return as_report(saved) if saved else None


def run(name, scope, filters):
    """(report, DataFrame) for the named report; KeyError when there is none."""
    report = get_report(name)
    if report is None:
        raise KeyError(name)
    return report, report.run(scope, filters)
