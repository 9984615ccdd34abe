"""Risk declarations (issue 4): `python -m bench.risk --declarations 200000`.

Loads the demo citizens (bench/__main__.py's loader) and DECLARATIONS demo cases with one declaration
each (services/demo_risk.py), then times through the whole Flask stack: the triage queue for a CDC
user without a filter and for a commune station user with each one filter, beside the raw SQL of the
same page; and a citizen's declaration: the form post (a code is sent) and the code post (the
declaration is stored and the case opened or joined). Budgets are reported, never asserted.
"""

import argparse
import json
import os
import statistics
import sys
import time

from bench.__main__ import PROJECT_DIR
from bench.__main__ import RESULTS_DIR
from bench.__main__ import QueryLog
from bench.__main__ import bench_accounts
from bench.__main__ import database_url
from bench.__main__ import load
from bench.__main__ import sign_in
from bench.__main__ import time_page

sys.path.insert(0, str(PROJECT_DIR))

import logging  # noqa: E402

from models.base import db  # noqa: E402
from models.base import open_database  # noqa: E402
from models.risk import Declaration  # noqa: E402
from models.risk import RiskCase  # noqa: E402
from tests import helpers  # noqa: E402

QUEUE_BUDGET_MS = 300
DECLARE_BUDGET_MS = 100
FIXED_CODE = "246810"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.risk", description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=200_000)
    parser.add_argument("--citizens", type=int, default=100_000, help="demo citizens the declarations are for")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database on the server where the bench database is created",
    )
    parser.add_argument("--postgres-database", default="bench_risk")
    parser.add_argument("--rebuild", action="store_true", help="reload the data even if the database has it")
    return parser.parse_args(argv)


def load_declarations(url, count):
    from services.demo_risk import generate

    db.initialize(open_database(url))
    with db.connection_context():
        have = Declaration.select().count()
        if have >= count:
            print(f"  reusing {have:,} declarations", flush=True)
            return None
        started = time.perf_counter()
        generate(count - have, seed=1)
        seconds = time.perf_counter() - started
    print(f"  {count - have:,} declarations in {seconds:.1f} s", flush=True)
    return round(seconds, 1)


def queue_pages(ward_code, staff_id, disease_id):
    """(name, url) of the queue with each one filter, as Flask-Admin numbers them (RiskCaseView.column_filters)."""
    base = "/admin/risk_case/"
    return [
        ("risk high", f"{base}?flt0_0=high"),
        ("status verifying", f"{base}?flt0_1=verifying"),
        ("open", f"{base}?flt0_2=open"),
        ("commune", f"{base}?flt0_3={ward_code}"),
        ("disease", f"{base}?flt0_4={disease_id}"),
        ("age 3-7 days", f"{base}?flt0_5=7"),
        ("assignee", f"{base}?flt0_6={staff_id}"),
        ("my open cases", f"{base}?flt0_8=1"),
        ("untouched 24 h", f"{base}?flt0_9=1"),
        ("search by number", f"{base}?search=CA-D00"),
    ]


def time_declarations(app, ward_code, repeat):
    """Server time of the form post and of the code post, each a fresh person, phone and address."""
    from services import otp

    otp.new_code = lambda: FIXED_CODE  # the bench reads no SMS
    with db.connection_context():
        version_id = _version_id()
    form_ms, verify_ms = [], []
    for i in range(repeat + 1):
        client = app.test_client()
        address = f"10.{i // 250 % 250}.{i % 250}.9"
        page = client.get("/declare", environ_base={"REMOTE_ADDR": address}).text
        data = {
            "csrf_token": helpers.csrf_from(page),
            "version": str(version_id),
            "for_whom": "self",
            "identify_by": "details",
            "full_name": f"Người Thử {i}",
            "date_of_birth": "01/01/1990",
            "ward": str(ward_code),
            "phone": f"09{88000000 + i:08d}",
            "q_fever": "yes",
            "q_cough": "yes",
            "q_breathing": "no",
            "q_taste_smell": "no",
            "q_close_contact": "confirmed",
            "q_outbreak_travel": "no",
        }
        started = time.perf_counter()
        response = client.post("/declare", data=data, environ_base={"REMOTE_ADDR": address})
        form_time = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        token = helpers.csrf_from(response.text)
        started = time.perf_counter()
        response = client.post(
            "/declare/verify", data={"csrf_token": token, "otp": FIXED_CODE}, environ_base={"REMOTE_ADDR": address}
        )
        verify_time = (time.perf_counter() - started) * 1000
        assert response.status_code == 303 and response.location.endswith("/declare/done"), response.status_code
        if i:  # the first one warms templates and caches
            form_ms.append(form_time)
            verify_ms.append(verify_time)
    return {
        "form_post_median_ms": round(statistics.median(form_ms), 1),
        "verify_post_median_ms": round(statistics.median(verify_ms), 1),
        "budget_ms": DECLARE_BUDGET_MS,
        "within_budget": statistics.median(verify_ms) <= DECLARE_BUDGET_MS
        and statistics.median(form_ms) <= DECLARE_BUDGET_MS,
    }


def _version_id():
    from models.risk import Checklist

    return Checklist.offered().first().current_version().id


def run(kind, args):
    url = database_url(kind, args)
    loaded = load(kind, url, args)
    load_seconds = load_declarations(url, args.declarations)
    from app import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-risk", "SMS_BACKEND": "console", "TESTING": False})
    app.extensions["mail"].backend.send = lambda message: None  # high-risk mail is queued, not logged
    with db.connection_context():
        accounts, ward_code, residents = bench_accounts()
        cases = RiskCase.select().count()
        disease_id = RiskCase.select(RiskCase.disease).limit(1).scalar()
        commune_user = accounts["bench.commune"]
        # Give the commune user some cases so that "my open cases" and the assignee filter find rows.
        RiskCase.update(assignee=commune_user.id).where(
            RiskCase.id.in_(RiskCase.select(RiskCase.id).where(RiskCase.ward == ward_code).limit(50))
        ).execute()
    query_log = QueryLog()
    peewee_log = logging.getLogger("peewee")
    peewee_log.addHandler(query_log)
    peewee_log.setLevel(logging.DEBUG)
    peewee_log.propagate = False
    pages = {}
    for username, who in (("bench.cdc", "cdc"), ("bench.commune", "commune")):
        client = app.test_client()
        sign_in(client, username)
        wanted = [("queue, no filter", "/admin/risk_case/")]
        if who == "commune":
            wanted += queue_pages(ward_code, commune_user.id, disease_id)
        else:
            wanted += [("queue, risk high", "/admin/risk_case/?flt0_0=high")]
        for name, page_url in wanted:
            figures = time_page(client, page_url, args.repeat, query_log)
            figures["budget_ms"] = QUEUE_BUDGET_MS
            figures["within_budget"] = figures["median_ms"] <= QUEUE_BUDGET_MS
            pages[f"{who}: {name}"] = figures
            print(f"  {who:8} {name:28} median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms  "
                  f"raw SQL {figures['raw_sql_median_ms']:6.1f} ms  budget {QUEUE_BUDGET_MS} ms", flush=True)  # fmt: skip
    peewee_log.removeHandler(query_log)
    declaring = time_declarations(app, ward_code, args.repeat)
    print(f"  declaration: form post median {declaring['form_post_median_ms']} ms, code post median "
          f"{declaring['verify_post_median_ms']} ms (budget {DECLARE_BUDGET_MS} ms)", flush=True)  # fmt: skip
    return {
        "database": kind,
        "citizens": args.citizens,
        "declarations": args.declarations,
        "cases": cases,
        "commune_residents": residents,
        "citizens_load": loaded,
        "declarations_load_seconds": load_seconds,
        "pages": pages,
        "declaring": declaring,
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    RESULTS_DIR.mkdir(exist_ok=True)
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        print(f"{kind}: {args.citizens:,} citizens, {args.declarations:,} declarations", flush=True)
        result = run(kind, args)
        path = RESULTS_DIR / f"risk-{kind}-{args.declarations}.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"  results in {path}", flush=True)


if __name__ == "__main__":
    main()
