"""Citizen import (issue 6): `python -m bench.imports --citizens 20000`.

Writes a CSV of N realistic citizens in the import template (from services/demo_data's people,
half of them with a health code from an "earlier system", half left blank for the portal to issue),
then, for each database, imports it into an empty, freshly migrated database in a child process
and reports rows per second and the child's peak resident memory. A second import of the same
file is timed too (every row unchanged). Budget: >= 20,000 rows/s at 1,000,000 rows, peak < 500 MB.

SQLite: instance/bench-import.db (recreated). PostgreSQL: database `bench_import` (its schema is
dropped and recreated). Results go to bench/results/imports-<database>-<citizens>.json.
"""

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench import peak_rss_mb  # noqa: E402

ROWS_PER_SECOND = 20_000
PEAK_MB = 500
HEADER = (
    "full_name", "date_of_birth", "gender", "phone", "national_id", "insurance_number", "health_code",
    "ward_code", "address", "occupation", "ethnicity", "email", "household_number",
)  # fmt: skip


def write_csv(path, citizens, seed):
    """The template CSV of n demo citizens of Quảng Ninh; returns the number of rows."""
    from models.base import db
    from models.base import open_database
    from models.places import Province
    from models.places import Ward
    from services.demo_data import CITIZEN_COLUMNS
    from services.demo_data import iter_people

    database = open_database(f"sqlite:///{path.parent / 'bench-import-wards.db'}")
    db.initialize(database)
    with db.connection_context():
        from migrations import migrate

        migrate()
        province = Province.get_by_id(22)
        wards = sorted(Ward.select(Ward.code, Ward.name, Ward.division_type).where(Ward.province == 22).tuples())
    database.close()
    index = {name: i for i, name in enumerate(CITIZEN_COLUMNS)}
    rows = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        batches = iter_people((province.code, province.name, province.division_type), wards, citizens, seed)
        for households, people, _relations in batches:
            books = {h[0]: h[1] for h in households}
            for person in people:
                value = person.__getitem__
                born = value(index["date_of_birth"])
                writer.writerow(
                    (
                        value(index["full_name"]),
                        _day_month_year(born),
                        {"M": "Nam", "F": "Nữ"}.get(value(index["gender"]), ""),
                        value(index["phone"]) or "",
                        value(index["national_id"]) or "",
                        value(index["insurance_number"]) or "",
                        value(index["health_code"]) if rows % 2 else "",
                        f"{value(index['ward_id']):05d}",
                        value(index["permanent_address"]) or "",
                        value(index["occupation"]) or "",
                        value(index["ethnicity"]) or "",
                        value(index["email"]) or "",
                        books.get(value(index["household_id"]), ""),
                    )
                )
                rows += 1
    return rows


def _day_month_year(value):
    """dd/mm/yyyy of a date or an ISO date string, as on the paper form."""
    if not value:
        return ""
    text = str(value)[:10]
    return f"{text[8:10]}/{text[5:7]}/{text[0:4]}"


def child(url, csv_path):
    """Import csv_path into the database at url twice; print one JSON line."""
    from app import create_app
    from models.accounts import Scope
    from models.base import db
    from services.citizen_import import import_citizens

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-not-for-production", "JOBS_WORKER": False})
    figures, checker_peaks = {}, []
    with app.app_context(), db.connection_context():
        for run in ("first", "second"):
            started = time.perf_counter()
            result = import_citizens(
                csv_path, Scope.everything(), rejected_path=Path(csv_path).with_suffix(".rej.xlsx")
            )
            seconds = time.perf_counter() - started
            checker_peaks.append(result.checker_peak_rss_mb or 0)
            figures[run] = {"seconds": round(seconds, 3), "rows": result.total, "counts": result.counts_line()}
            figures[run]["rows_per_second"] = round(result.total / seconds)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    # The process that checked the file's rows (services.citizen_import._Checker), as it measured itself.
    figures["checker_peak_rss_mb"] = round(max(checker_peaks, default=0), 1)
    print(json.dumps(figures))


RAW_COLUMNS = (
    "full_name", "date_of_birth", "gender", "phone", "national_id", "insurance_number", "health_code",
    "occupation", "ethnicity", "email", "ward_id", "permanent_address", "household_id", "search_text",
    "created_at", "updated_at",
)  # fmt: skip


def raw_child(source_url, target_url):
    """The same citizens stored by the database alone: no checks, no matching, one bulk statement.

    The rows the import stored are read back from source_url and written into the empty, migrated
    database at target_url (same indexes, search index included): executemany on SQLite (the search
    index filled once at the end), COPY on PostgreSQL. Prints one JSON line.
    """
    import io

    import psycopg2

    columns = ", ".join(f'"{c}"' for c in RAW_COLUMNS)
    # Households are left out (household_id NULL): the raw load measures the citizen table.
    selected = ", ".join("NULL" if c == "household_id" else f'"{c}"' for c in RAW_COLUMNS)
    select = f"SELECT {selected} FROM citizen ORDER BY id"
    if source_url.startswith("sqlite"):
        import sqlite3

        rows = sqlite3.connect(source_url.removeprefix("sqlite:///")).execute(select).fetchall()
        from models.base import SQLITE_PRAGMAS

        target = sqlite3.connect(target_url.removeprefix("sqlite:///"))
        # The pragmas the import's own connection has (until 3 December only WAL and synchronous
        # were set here: SQLite's default 2 MB page cache made this load 2.5 times slower at a million rows).
        for name, value in SQLITE_PRAGMAS.items():
            target.execute(f"PRAGMA {name} = {value}")
        marks = ", ".join("?" * len(RAW_COLUMNS))
        started = time.perf_counter()
        with target:  # its fastest way: the search index filled in one statement, not by the trigger
            target.execute("DROP TRIGGER citizen_fts_insert")
            target.executemany(f"INSERT INTO citizen ({columns}) VALUES ({marks})", rows)
            target.execute("INSERT INTO citizen_fts(rowid, search_text) SELECT id, search_text FROM citizen")
        seconds = time.perf_counter() - started
    else:
        buffer = io.StringIO()
        with psycopg2.connect(source_url) as source, source.cursor() as cursor:
            cursor.copy_expert(f"COPY ({select}) TO STDOUT", buffer)
        rows = buffer.getvalue().count("\n")
        target = psycopg2.connect(target_url)
        started = time.perf_counter()
        with target, target.cursor() as cursor:
            buffer.seek(0)
            cursor.copy_expert(f"COPY citizen ({columns}) FROM STDIN", buffer)
        seconds = time.perf_counter() - started
        rows = [None] * rows
    print(json.dumps({"rows": len(rows), "seconds": round(seconds, 3), "rows_per_second": round(len(rows) / seconds)}))


def fresh_sqlite(name="bench-import.db"):
    path = PROJECT_DIR / "instance" / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def fresh_postgres(admin_url, name):
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS public CASCADE")
        cursor.execute("CREATE SCHEMA public")
    connection.close()
    return url


def migrate(url):
    from migrations import migrate as run_migrations
    from models.base import db
    from models.base import open_database

    database = open_database(url)
    db.initialize(database)
    with db.connection_context():
        run_migrations()
    database.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--postgres-database", default="bench_import")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw database load for comparison")
    parser.add_argument("--child", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    if args.raw_child:
        raw_child(*args.raw_child)
        return
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    csv_path = PROJECT_DIR / "instance" / f"bench-import-{args.citizens}.csv"
    csv_path.parent.mkdir(exist_ok=True)  # a fresh clone has no instance/ until make run
    started = time.perf_counter()
    rows = write_csv(csv_path, args.citizens, args.seed)
    print(f"wrote {rows} rows to {csv_path} in {time.perf_counter() - started:.1f} s")
    for name in args.databases.split(","):
        if name == "sqlite":
            url = fresh_sqlite()
        else:
            url = fresh_postgres(args.postgres_admin_url, args.postgres_database)
        migrate(url)
        settle(args.postgres_admin_url)
        figures = _run_child("--child", url, str(csv_path)) | {"database": name, "citizens": args.citizens}
        first = figures["first"]
        memory = figures["peak_rss_mb"] + figures["checker_peak_rss_mb"]
        verdict = "ok" if first["rows_per_second"] >= ROWS_PER_SECOND and memory < PEAK_MB else "OVER BUDGET"
        print(
            f"{name}: {first['rows']} rows in {first['seconds']} s = {first['rows_per_second']} rows/s "
            f"({first['counts']}); again: {figures['second']['rows_per_second']} rows/s "
            f"({figures['second']['counts']}); peak RSS {figures['peak_rss_mb']} MB "
            f"+ {figures['checker_peak_rss_mb']} MB checking [{verdict}]"
        )
        if not args.no_raw:
            if name == "sqlite":
                target = fresh_sqlite("bench-import-raw.db")
            else:
                target = fresh_postgres(args.postgres_admin_url, args.postgres_database + "_raw")
            migrate(target)
            settle(args.postgres_admin_url)
            figures["raw"] = _run_child("--raw-child", url, target)
            print(
                f"{name} raw load of the same citizens (no checks, one bulk statement): "
                f"{figures['raw']['rows_per_second']} rows/s"
            )
        (results_dir / f"imports-{name}-{args.citizens}.json").write_text(json.dumps(figures, indent=2))


def settle(postgres_admin_url):
    """Write out what earlier steps left in memory (SQLite's files, PostgreSQL's WAL and dropped
    tables) before a timed step, so that their writing does not fall within it."""
    import psycopg2

    os.sync()
    with contextlib.suppress(psycopg2.Error):
        connection = psycopg2.connect(postgres_admin_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")  # needs a superuser, as the bench's default user is
        connection.close()
    os.sync()


def _run_child(*arguments):
    """Run this module in a child process with these arguments; its last output line as JSON."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.imports", *arguments],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
