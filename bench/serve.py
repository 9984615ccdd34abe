"""The portal under waitress as app.py serves it, plus a trivial route to compare with.

Run by bench/load.py in a process of its own:
python -m bench.serve DATABASE_URL PORT OUTBOX PROCESSES.
PROCESSES waitress processes share the port, each with waitress's default 4 threads, exactly as
app.py serves with WEB_PROCESSES. The portal trusts one reverse proxy (TRUSTED_PROXIES=1), as a
province's deployment behind nginx would, so that the load's X-Forwarded-For addresses are the
clients' own: the send limits are the real ones, counted and spent on every lookup.

Two more routes measure what any lookup must cost on this stack, whatever the code around it (the
"floors" in docs/BENCHMARKS.md), each answering with as many bytes as the lookup's verify page:
/bench/audit-row reads the form and writes the one audit row every lookup attempt needs, alone in
its transaction; /bench/lookup-write reads the form and runs the lookup's whole transaction
(services.code_requests: the match, the limits, the challenge and the audit row), without the CSRF
check, the session or the page; /bench/lookup-no-database is the lookup's own view with everything
but the database (form, CSRF check, session, verify page), its transaction answered by a stand-in.
"""

import logging
import sys

# As many bytes as the verify page the lookup answers with (1,471 in Vietnamese).
VERIFY_PAGE_SIZED = "x" * 1471


NO_DATABASE_PATH = "/bench/lookup-no-database"


def without_database_on_its_path(request_code):
    """code_requests.request_code, answered without the database on NO_DATABASE_PATH (no citizen: no SMS)."""
    import secrets

    from flask import request

    from services import otp

    def stand_in(secret, now, phone, health_code, address, replaces=None):
        if request.path == NO_DATABASE_PATH:
            return "sent", None, secrets.token_urlsafe(32), otp.new_code()
        return request_code(secret, now, phone, health_code, address, replaces=replaces)

    return stand_in


def write_audit_row(address):
    """The lookup's audit row alone, in a transaction of its own, written as the lookup writes it."""
    from models.base import db
    from models.base import for_database
    from models.base import is_postgres
    from models.base import utcnow
    from services import code_requests
    from services import rate_limits

    row = code_requests._audit_row(utcnow(), None, address, outcome="no_match", resend=False)
    if is_postgres():
        db.execute_sql(for_database(code_requests.INSERT_AUDIT), row)  # autocommit: one round trip
        return
    with rate_limits.sqlite_writer_turn():
        db.connection().execute(code_requests.INSERT_AUDIT, row)  # autocommit


def main():
    database_url, port, outbox, processes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    from flask import abort
    from flask import request

    from app import create_app
    from app import serve_forever
    from app import serve_in_processes
    from public import lookup as lookup_views
    from services import clock
    from services import code_requests

    code_requests.request_code = without_database_on_its_path(code_requests.request_code)

    def factory():
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "bench",
                "SMS_BACKEND": "file",
                "SMS_OUTBOX": outbox,
                "TRUSTED_PROXIES": 1,
            }
        )

        @app.get("/bench/trivial")
        def trivial():
            return "ok"

        @app.post("/bench/audit-row")
        def audit_row():
            if not request.form:  # parsed, as the lookup parses its form
                abort(400)
            write_audit_row(request.remote_addr)
            return VERIFY_PAGE_SIZED

        @app.post(NO_DATABASE_PATH)
        def lookup_no_database():
            return lookup_views.lookup()

        @app.post("/bench/lookup-write")
        def lookup_write():
            form = request.form
            code_requests.request_code(
                app.config["SECRET_KEY"], clock.now(), form["phone"], form["health_code"], request.remote_addr
            )
            return VERIFY_PAGE_SIZED

        return app

    # Waitress warns on every request that finds its 4 threads busy, which is every request
    # under this load: writing thousands of those lines would be measured as the portal's cost.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if processes == 1:
        serve_forever(factory(), host="127.0.0.1", port=port, _quiet=True)
    else:
        serve_in_processes(processes, "127.0.0.1", port, factory)


if __name__ == "__main__":
    main()
