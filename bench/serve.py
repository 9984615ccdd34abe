"""The portal under waitress with its default threads, as app.py serves it, plus a trivial route to compare with.

Run by bench/load.py in a process of its own: python -m bench.serve DATABASE_URL PORT OUTBOX.
The send limits are raised for the benchmark (every request comes from 127.0.0.1 and would be
refused after 20 an hour); they are still counted in the database on every lookup.
"""

import sys

from waitress import serve


def main():
    database_url, port, outbox = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    from app import create_app
    from services import rate_limits

    rate_limits.LIMITS = {name: (10**9, 10**9) for name in rate_limits.LIMITS}
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench", "SMS_BACKEND": "file", "SMS_OUTBOX": outbox})

    @app.get("/bench/trivial")
    def trivial():
        return "ok"

    serve(app, host="127.0.0.1", port=port, _quiet=True)  # default threads (4), as app.py


if __name__ == "__main__":
    main()
