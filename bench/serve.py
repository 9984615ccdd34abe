"""The portal under waitress as app.py serves it, plus a trivial route to compare with.

Run by bench/load.py in a process of its own:
python -m bench.serve DATABASE_URL PORT OUTBOX PROCESSES.
PROCESSES waitress processes share the port, each with waitress's default 4 threads, exactly as
app.py serves with WEB_PROCESSES. The send limits are raised for the benchmark (every request
comes from 127.0.0.1 and would be refused after 20 an hour); they are still counted in the
database on every lookup.
"""

import logging
import sys


def main():
    database_url, port, outbox, processes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    from app import create_app
    from app import serve_forever
    from app import serve_in_processes
    from services import rate_limits

    def factory():
        rate_limits.LIMITS = {name: (10**9, 10**9) for name in rate_limits.LIMITS}
        app = create_app(
            {"DATABASE_URL": database_url, "SECRET_KEY": "bench", "SMS_BACKEND": "file", "SMS_OUTBOX": outbox}
        )

        @app.get("/bench/trivial")
        def trivial():
            return "ok"

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
