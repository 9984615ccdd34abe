"""The portal under waitress as app.py serves it, plus a trivial route to compare with.

Run by bench/load.py in a process of its own:
python -m bench.serve DATABASE_URL PORT OUTBOX PROCESSES.
PROCESSES waitress processes share the port, each with waitress's default 4 threads, exactly as
app.py serves with WEB_PROCESSES. The portal trusts one reverse proxy (TRUSTED_PROXIES=1), as a
province's deployment behind nginx would, so that the load's X-Forwarded-For addresses are the
clients' own: the send limits are the real ones, counted and spent on every lookup.
"""

import logging
import sys


def main():
    database_url, port, outbox, processes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    from app import create_app
    from app import serve_forever
    from app import serve_in_processes

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
