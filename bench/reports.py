"""Reports and exports at province scale (issue 5): `python -m bench.reports --citizens 1000000`.

On the demo data of bench/__main__.py (the same databases: instance/bench-<N>.db and PostgreSQL
`bench`, loaded when missing), for each database:

- the coverage report for the whole province, against the raw SQL GROUP BY it runs (the same
  statement, straight on the database, no DataFrame): budget <= 3 s and <= 2x the raw SQL;
- the dashboard (the back office's home, through the whole Flask stack, as a department leader)
  after its figures are refreshed: budget <= 300 ms (the refresh itself is timed and reported);
- the citizens CSV line list for the province, streamed to nowhere in a child process: rows per
  second (budget >= 100,000) and the child's peak resident memory (budget < 200 MB).

Results go to bench/results/reports-<database>-<citizens>.json. Budgets are reported, not asserted.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench import __main__ as portal_bench  # noqa: E402
from bench import peak_rss_mb  # noqa: E402
from models.base import db  # noqa: E402
from models.base import open_database  # noqa: E402

COVERAGE_BUDGET_MS = 3000
COVERAGE_RAW_RATIO = 2.0
DASHBOARD_BUDGET_MS = 300
EXPORT_ROWS_PER_SECOND = 100_000
EXPORT_PEAK_MB = 200


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the coverage report")
    parser.add_argument("--page-repeat", type=int, default=30, help="timed requests of the dashboard")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database on the server where the bench database is created",
    )
    parser.add_argument("--postgres-database", default="bench")
    parser.add_argument("--rebuild", action="store_true", help="reload the data even if the database has it")
    parser.add_argument("--export-child", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def median_ms(function, repeat):
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


def bench_coverage(repeat):
    """The coverage report for the province against its own GROUP BY run raw."""
    from models.accounts import Scope
    from reports import get_report
    from reports.base import Filters
    from reports.coverage import doses_by_commune

    report = get_report("coverage")
    with db.connection_context():
        rows = len(report.run(Scope.everything(), Filters()))  # warm the caches
        sql, params = doses_by_commune(None, Filters()).sql()
        report_ms = median_ms(lambda: report.run(Scope.everything(), Filters()), repeat)
        raw_ms = median_ms(lambda: db.execute_sql(sql, params).fetchall(), repeat)
    ratio = report_ms / raw_ms if raw_ms else None
    return {
        "rows": rows,
        "median_ms": report_ms,
        "raw_sql_median_ms": raw_ms,
        "ratio_to_raw": round(ratio, 2) if ratio else None,
        "within_budget": report_ms <= COVERAGE_BUDGET_MS and (ratio or 0) <= COVERAGE_RAW_RATIO,
    }


def leader_account():
    from models.accounts import Role
    from models.accounts import Staff
    from models.units import HealthUnit
    from models.units import UnitKind

    department = HealthUnit.get(HealthUnit.kind == UnitKind.DEPARTMENT)
    name = "bench.leader"
    staff = Staff.get_or_none(Staff.username == name) or Staff(
        username=name, full_name=name, unit=department, role=Role.DEPARTMENT_LEADER
    )
    staff.unit, staff.role, staff.active, staff.failed_sign_ins, staff.locked_until = (
        department, Role.DEPARTMENT_LEADER, True, 0, None
    )  # fmt: skip
    staff.set_password(portal_bench.PASSWORD)
    staff.save()
    return staff


def bench_dashboard(url, repeat):
    """Refresh the dashboard's figures (timed), then time the home page as a department leader."""
    from app import create_app
    from reports.dashboard import refresh

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-reports", "SMS_BACKEND": "console"})
    app.config["JOBS_WORKER"] = False  # the figures are fresh: nothing to run in the background
    with db.connection_context():
        leader_account()
        started = time.perf_counter()
        refresh()
        refresh_s = time.perf_counter() - started
    client = app.test_client()
    portal_bench.sign_in(client, "bench.leader")
    response = client.get("/admin/")
    assert response.status_code == 200 and "<svg" in response.text, response.status_code
    page_ms = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/admin/")
        page_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    median = round(statistics.median(page_ms), 1)
    return {
        "refresh_seconds": round(refresh_s, 2),
        "median_ms": median,
        "p95_ms": round(sorted(page_ms)[int(len(page_ms) * 0.95) - 1], 1),
        "within_budget": median <= DASHBOARD_BUDGET_MS,
    }


def export_child(url):
    """In a fresh process: stream the province's citizens as CSV, print rows, seconds and peak memory."""
    from app import create_app
    from models.accounts import Scope
    from reports.base import Filters
    from reports.lines import CITIZENS
    from services import report_files

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-reports", "SMS_BACKEND": "console"})
    rows = 0
    size = 0
    baseline_mb = peak_rss_mb()
    with app.app_context(), db.connection_context():
        started = time.perf_counter()
        for chunk in report_files.line_list_csv_chunks(CITIZENS, Scope.everything(), Filters()):
            size += len(chunk)
            rows += chunk.count(b"\r\n")
        seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {"rows": rows - 1, "seconds": seconds, "bytes": size, "peak_mb": peak_mb, "baseline_mb": baseline_mb}
        )
    )


def bench_export(url):
    child = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--export-child", url],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    rate = figures["rows"] / figures["seconds"] if figures["seconds"] else 0
    return {
        "rows": figures["rows"],
        "seconds": round(figures["seconds"], 2),
        "megabytes": round(figures["bytes"] / 1024 / 1024, 1),
        "rows_per_second": round(rate),
        "peak_rss_mb": round(figures["peak_mb"], 1),
        # The process before the first row: Python, Flask, pandas, openpyxl and the app.
        "rss_before_export_mb": round(figures["baseline_mb"], 1),
        "within_budget": rate >= EXPORT_ROWS_PER_SECOND and figures["peak_mb"] < EXPORT_PEAK_MB,
    }


def main(argv=None):
    args = parse_args(argv)
    if args.export_child:
        export_child(args.export_child)
        return 0
    portal_bench.RESULTS_DIR.mkdir(exist_ok=True)
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        print(f"== reports, {kind}, {args.citizens:,} citizens", flush=True)
        url = portal_bench.database_url(kind, args)
        portal_bench.load(kind, url, args)
        db.initialize(open_database(url))
        with db.connection_context():
            from migrations import migrate
            from models.records import Vaccination

            migrate()
            doses = Vaccination.select().count()
        coverage = bench_coverage(args.repeat)
        print(f"  coverage report   median {coverage['median_ms']:8.1f} ms  raw SQL {coverage['raw_sql_median_ms']:8.1f} ms"
              f"  x{coverage['ratio_to_raw']}  ({coverage['rows']} rows, {doses:,} doses)"
              f"  budget {COVERAGE_BUDGET_MS} ms and x{COVERAGE_RAW_RATIO}: {'ok' if coverage['within_budget'] else 'MISSED'}",
              flush=True)  # fmt: skip
        dashboard = bench_dashboard(url, args.page_repeat)
        print(f"  dashboard         median {dashboard['median_ms']:8.1f} ms  p95 {dashboard['p95_ms']:.1f} ms"
              f"  (refresh {dashboard['refresh_seconds']} s)"
              f"  budget {DASHBOARD_BUDGET_MS} ms: {'ok' if dashboard['within_budget'] else 'MISSED'}", flush=True)  # fmt: skip
        export = bench_export(url)
        print(f"  citizens CSV      {export['rows']:,} rows in {export['seconds']} s = {export['rows_per_second']:,} rows/s"
              f"  peak RSS {export['peak_rss_mb']} MB (before the first row {export['rss_before_export_mb']} MB;"
              f" {export['megabytes']} MB of CSV)"
              f"  budget {EXPORT_ROWS_PER_SECOND:,} rows/s, < {EXPORT_PEAK_MB} MB: "
              f"{'ok' if export['within_budget'] else 'MISSED'}", flush=True)  # fmt: skip
        result = {
            "database": kind,
            "citizens": args.citizens,
            "vaccinations": doses,
            "when": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": portal_bench.machine(),
            "coverage": coverage,
            "dashboard": dashboard,
            "citizens_csv": export,
        }
        out = portal_bench.RESULTS_DIR / f"reports-{kind}-{args.citizens}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"written {out.relative_to(PROJECT_DIR)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
