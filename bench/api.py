"""Encounter API (issue 6): `python -m bench.api [--batches 20] [--batch-size 1000] [--database-url URL]`.

Builds a demo database (a hospital with a key, CITIZENS citizens of Quảng Ninh), then posts BATCHES
batches of BATCH_SIZE encounters to POST /api/v1/encounters through the Flask test client (the whole
request: key check, JSON, validation, one transaction per batch, audit). Patients are found by health
code (80 %), by CCCD (10 %) or are unknown and queued (10 %). The same batches are then sent again
(every visit unchanged). Budget: >= 500 encounters/s in batches.

By default on SQLite (instance/bench-api.db, recreated) and on PostgreSQL (database `bench_api` on the
TEST_DATABASE_URL server, its schema recreated); --database-url runs on that one database only.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))

ENCOUNTERS_PER_SECOND = 500
PROVINCE = 22


def build(database_url, citizens, seed):
    """A migrated database with a hospital, its key and citizens; returns (app, secret, people)."""
    from app import create_app
    from models.accounts import Role
    from models.accounts import Staff
    from models.base import db
    from models.base import utcnow
    from models.citizens import Citizen
    from models.places import Ward
    from models.units import HealthUnit
    from models.units import UnitKind
    from models.validation import new_health_code
    from services import api_keys

    if database_url.startswith("postgres"):
        from models.base import open_database

        database = open_database(database_url)
        database.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        database.execute_sql("CREATE SCHEMA public")
        database.close()
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    rng = random.Random(seed)
    with app.app_context(), db.connection_context():
        from migrations import migrate

        migrate()
        wards = [w for (w,) in Ward.select(Ward.code).where(Ward.province == PROVINCE).tuples()]
        hospital = HealthUnit.create(
            code="BVDK-BENCH", name="Bệnh viện đa khoa", kind=UnitKind.HOSPITAL, province=PROVINCE
        )
        admin = Staff.create(username="bench-admin", full_name="Bench", unit=hospital, role=Role.SYSTEM_ADMIN)
        _key, secret = api_keys.issue(hospital, "bench", by=admin)
        people, codes = [], set()
        now = utcnow()
        while len(people) < citizens:
            code = new_health_code(PROVINCE, rng)
            if code in codes:
                continue
            codes.add(code)
            national_id = f"0221{rng.randrange(10**2):02d}{rng.randrange(10**6):06d}"
            people.append((code, national_id, rng.choice(wards)))
        rows = [
            {
                "full_name": f"Người {i}",
                "health_code": c,
                "national_id": n,
                "ward": w,
                "created_at": now,
                "updated_at": now,
            }
            for i, (c, n, w) in enumerate(people)
        ]
        with db.atomic():
            for start in range(0, len(rows), 1000):
                Citizen.insert_many(rows[start : start + 1000]).execute()
    return app, secret, people, wards


def batches(people, wards, count, size, seed):
    """The request bodies: count batches of size encounters with distinct visit ids."""
    rng = random.Random(seed)
    bodies = []
    for b in range(count):
        items = []
        for i in range(size):
            code, national_id, ward = rng.choice(people)
            kind = rng.random()
            if kind < 0.8:
                patient = {"health_code": code}
            elif kind < 0.9:
                patient = {"national_id": national_id}
            else:
                patient = {
                    "national_id": f"0011900{rng.randrange(10**5):05d}",
                    "full_name": "Chưa rõ",
                    "ward_code": rng.choice(wards),
                }
            items.append(
                {
                    "visit_id": f"K{b:03d}-{i:05d}",
                    "patient": patient,
                    "date": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "icd10_code": rng.choice(["J45.9", "A09", "I10", None]),
                    "diagnosis": rng.choice(["Hen phế quản", "Tiêu chảy", "Tăng huyết áp", "Cúm"]),
                    "summary": "Khám và cấp thuốc.",
                }
            )
        bodies.append(json.dumps({"encounters": items}, ensure_ascii=False))
    return bodies


def send(app, secret, bodies):
    """Post every body; return (seconds, summed counts)."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    totals = {"created": 0, "updated": 0, "unchanged": 0, "queued": 0}
    start = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/encounters", data=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"HTTP {response.status_code}: {response.text[:500]}")
        for key, value in response.get_json().items():
            totals[key] += value
    return time.perf_counter() - start, totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--citizens", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="one database only (its schema is recreated)")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--postgres-database", default="bench_api")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    if args.database_url:
        urls = [("given", args.database_url)]
    else:
        urls = [(name, _fresh(name, args)) for name in args.databases.split(",")]
    ok = True
    for name, url in urls:
        ok = run(name, url, args) and ok
    print(f"budget >= {ENCOUNTERS_PER_SECOND}/s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def _fresh(name, args):
    """A URL to an empty database of this kind: instance/bench-api.db, or the bench_api PostgreSQL database."""
    if name == "postgres":
        from bench.imports import fresh_postgres

        return fresh_postgres(args.postgres_admin_url, args.postgres_database)
    path = PROJECT_DIR / "instance" / "bench-api.db"
    path.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run(name, url, args):
    """Both sends on one database; True when each met the budget."""
    app, secret, people, wards = build(url, args.citizens, args.seed)
    bodies = batches(people, wards, args.batches, args.batch_size, args.seed)
    total = args.batches * args.batch_size
    ok = True
    figures = {"database": name, "encounters": total, "batch_size": args.batch_size}
    for label in ("first send", "resend"):
        seconds, counts = send(app, secret, bodies)
        rate = total / seconds
        ok = ok and rate >= ENCOUNTERS_PER_SECOND
        figures[label] = {"seconds": round(seconds, 3), "per_second": round(rate), "counts": dict(counts)}
        print(f"{name} {label}: {total} encounters in {seconds:.2f} s = {rate:,.0f} encounters/s {dict(counts)}")
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    (results / f"api-{name}.json").write_text(json.dumps(figures, indent=2))
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
