"""Province-scale benchmarks: `make bench` (BENCH_ARGS="--citizens 1000000 --databases sqlite,postgres").

For each database it loads the demo data (timed: citizens per second), then times the back office's
pages through the whole Flask stack as a commune station user and as a CDC user, and the citizen
lookup's pages. Beside each page it re-runs the page's own SELECT statements, captured from peewee's
query log, straight on the database: what the same page costs the raw database.

Results go to bench/results/<database>-<citizens>.json and are printed as Markdown rows for
docs/BENCHMARKS.md. Budgets are checked and reported, never asserted in tests.
"""

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(PROJECT_DIR))

from peewee import fn  # noqa: E402

import config  # noqa: E402
from bench import load as concurrent_load  # noqa: E402
from migrations import migrate  # noqa: E402
from models.accounts import Role  # noqa: E402
from models.accounts import Staff  # noqa: E402
from models.base import db  # noqa: E402
from models.base import open_database  # noqa: E402
from models.citizens import Citizen  # noqa: E402
from models.units import HealthUnit  # noqa: E402
from models.units import UnitKind  # noqa: E402
from tests import helpers  # noqa: E402

PASSWORD = "bench-password-not-for-production"
# Budgets of issues 2 and 3, in milliseconds.
LIST_BUDGET_MS = 300
DETAIL_BUDGET_MS = 100


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database on the server where the bench database is created",
    )
    parser.add_argument("--postgres-database", default="bench")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each concurrent load")
    parser.add_argument("--rebuild", action="store_true", help="reload the data even if the database has it")
    return parser.parse_args(argv)


class QueryLog(logging.Handler):
    """Collects the SQL peewee runs, to replay a page's SELECTs on the raw database."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries = []

    def emit(self, record):
        if isinstance(record.msg, tuple):
            self.queries.append(record.msg)


def database_url(kind, args):
    if kind == "sqlite":
        path = PROJECT_DIR / "instance" / f"bench-{args.citizens}.db"
        path.parent.mkdir(exist_ok=True)
        return f"sqlite:///{path}"
    import psycopg2

    admin = psycopg2.connect(args.postgres_admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.postgres_database,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{args.postgres_database}"')
    admin.close()
    return args.postgres_admin_url.rsplit("/", 1)[0] + "/" + args.postgres_database


def reset(kind, url):
    """An empty database at url."""
    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    database = open_database(url)
    database.execute_sql("DROP SCHEMA public CASCADE")
    database.execute_sql("CREATE SCHEMA public")
    database.close()


def load(kind, url, args):
    """The demo data, loaded unless the database already holds it; the load's figures or None."""
    from services.demo_data import generate

    db.initialize(open_database(url))
    db.connect(reuse_if_open=True)
    try:
        migrate()
        have = Citizen.select().count()
    finally:
        db.close()
    if have == args.citizens and not args.rebuild:
        print(f"{kind}: reusing {have:,} citizens at {url}", flush=True)
        return None
    reset(kind, url)
    db.initialize(open_database(url))
    with db.connection_context():
        migrate()
        started = time.perf_counter()
        result = generate(
            citizens=args.citizens, province_code=22, seed=1, echo=lambda line: print(f"  {line}", flush=True)
        )
        total = time.perf_counter() - started
    return {
        "citizens": result.citizens,
        "citizens_seconds": round(result.citizens_seconds, 2),
        "citizens_per_second": round(result.citizens / result.citizens_seconds),
        "records": result.records,
        "records_seconds": round(result.records_seconds, 2),
        "total_seconds": round(total, 1),
    }


def bench_accounts():
    """A commune station user (the station with the most residents) and a CDC user, with known passwords."""
    from models.units import UnitWard

    busiest = (
        Citizen.select(Citizen.ward, fn.COUNT(Citizen.id).alias("n"))
        .group_by(Citizen.ward)
        .order_by(fn.COUNT(Citizen.id).desc())
        .limit(1)
        .tuples()
        .first()
    )
    ward_code, residents = busiest
    station = (
        HealthUnit.select()
        .join(UnitWard)
        .where((UnitWard.ward == ward_code) & (HealthUnit.kind == UnitKind.COMMUNE_STATION))
        .first()
    )
    cdc = HealthUnit.get(HealthUnit.kind == UnitKind.CDC)
    accounts = {}
    for name, unit, role in (("bench.commune", station, Role.UNIT_STAFF), ("bench.cdc", cdc, Role.CDC_STAFF)):
        staff = Staff.get_or_none(Staff.username == name) or Staff(username=name, full_name=name, unit=unit, role=role)
        staff.unit, staff.role, staff.active, staff.failed_sign_ins, staff.locked_until = unit, role, True, 0, None
        staff.set_password(PASSWORD)
        staff.save()
        accounts[name] = staff
    return accounts, ward_code, residents


def sign_in(client, username):
    response = helpers.sign_in(client, username, PASSWORD)
    assert response.status_code == 302 and "/password/" not in response.location, response.location


def time_page(client, url, repeat, query_log, expect_text=None):
    """Median and p95 of the page in ms, with the median of replaying its SELECTs on the raw database."""
    response = client.get(url)  # warm: templates compiled, caches filled
    assert response.status_code == 200, (url, response.status_code)
    if expect_text:
        assert expect_text in response.text, (url, expect_text)
    page_ms = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        page_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    query_log.queries.clear()
    client.get(url)
    selects = [(sql, params) for sql, params in query_log.queries if sql.lstrip().upper().startswith("SELECT")]
    raw_ms = []
    for _ in range(repeat):
        with db.connection_context():
            started = time.perf_counter()
            for sql, params in selects:
                db.execute_sql(sql, params).fetchall()
            raw_ms.append((time.perf_counter() - started) * 1000)
    figures = concurrent_load.summarize(page_ms)
    return {
        "median_ms": figures["median_ms"],
        "p95_ms": figures["p95_ms"],
        "raw_sql_median_ms": round(statistics.median(raw_ms), 1),
        "selects": len(selects),
    }


def run_pages(url, args):
    from app import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "SMS_BACKEND": "console", "TESTING": False})
    with db.connection_context():
        accounts, ward_code, residents = bench_accounts()
        someone = (
            Citizen.select()
            .where((Citizen.ward == ward_code) & Citizen.phone.is_null(False) & Citizen.health_code.is_null(False))
            .order_by(Citizen.id.desc())
            .first()
        )
        search = " ".join(someone.search_text.split()[:3]) if someone.search_text else "nguyen van"
    query_log = QueryLog()
    peewee_log = logging.getLogger("peewee")
    peewee_log.addHandler(query_log)
    peewee_log.setLevel(logging.DEBUG)
    peewee_log.propagate = False
    pages = {}
    for username in accounts:
        client = app.test_client()
        sign_in(client, username)
        who = username.split(".")[1]
        cases = {
            "list, no filter": ("/admin/citizen/", None),
            f"list, name search '{search}'": (f"/admin/citizen/?search={search.replace(' ', '+')}", someone.full_name),
            "list, commune filter": (f"/admin/citizen/?flt0_0={ward_code}", None),
            "citizen page": (f"/admin/citizen/details/?id={someone.id}", someone.full_name),
        }
        for name, (page_url, expect_text) in cases.items():
            figures = time_page(client, page_url, args.repeat, query_log, expect_text)
            budget = DETAIL_BUDGET_MS if name == "citizen page" else LIST_BUDGET_MS
            figures["budget_ms"] = budget
            figures["within_budget"] = figures["median_ms"] <= budget
            pages[f"{who}: {name}"] = figures
            print(f"  {who:8} {name:44} median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms  "
                  f"raw SQL {figures['raw_sql_median_ms']:6.1f} ms  budget {budget} ms", flush=True)  # fmt: skip
    peewee_log.removeHandler(query_log)
    return pages, {"commune_residents": residents, "search": search}


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "python": platform.python_version()}


def main(argv=None):
    args = parse_args(argv)
    RESULTS_DIR.mkdir(exist_ok=True)
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        print(f"== {kind}, {args.citizens:,} citizens", flush=True)
        url = database_url(kind, args)
        loaded = load(kind, url, args)
        pages, context = run_pages(url, args)
        concurrent = {}
        for processes in sorted({1, config.load_settings({})["WEB_PROCESSES"]}):
            print(f"  citizens' pages under waitress, {processes} process(es), 16 concurrent clients…", flush=True)
            figures_by_load = concurrent_load.run(url, db, seconds=args.seconds, processes=processes)
            for name in (
                "record page",
                "trivial route",
                "floor: audit row",
                "floor: lookup write",
                "floor: no database",
                "lookup POST",
            ):
                figures = figures_by_load[name]
                print(f"  {name:19} {figures['requests_per_second']:7.1f} req/s  median {figures['median_ms']:6.1f} ms  "
                      f"p99 {figures['p99_ms']:6.1f} ms", flush=True)  # fmt: skip
            print(
                f"  lookup POST at {figures_by_load['lookup_vs_trivial']:.0%} of the trivial route's rate", flush=True
            )
            concurrent[f"{processes} process(es)"] = figures_by_load
        result = {
            "database": kind,
            "citizens": args.citizens,
            "when": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(),
            "load": loaded,
            "context": context,
            "pages": pages,
            "concurrent": concurrent,
        }
        out = RESULTS_DIR / f"{kind}-{args.citizens}.json"
        previous = json.loads(out.read_text()) if out.exists() else {}
        if loaded is None and previous.get("load"):
            result["load"] = previous["load"]  # the load figures of the run that built the data
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"written {out.relative_to(PROJECT_DIR)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
