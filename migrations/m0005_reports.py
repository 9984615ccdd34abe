"""Reports: saved builder reports, the dashboard's pre-aggregated figures and background jobs."""

from models.jobs import Job
from models.reporting import DashboardRefresh
from models.reporting import SavedReport
from models.reporting import WardDayFigures
from models.reporting import WardFigures
from models.reporting import WardVaccineFigures


def up(database):
    database.create_tables(
        [SavedReport, WardFigures, WardVaccineFigures, WardDayFigures, DashboardRefresh, Job], safe=True
    )
