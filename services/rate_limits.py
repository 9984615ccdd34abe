"""Limits on SMS sends, kept in the database so they hold across several server processes."""

import contextlib
import datetime

from models.base import db
from models.base import is_postgres
from models.lookup import RateEvent

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
# (key prefix, per hour, per day)
LIMITS = {
    "phone": (3, 10),
    "code": (3, 10),
    "address": (20, 100),
}


def keys_for(phone, health_code, address):
    return [f"phone:{phone}", f"code:{health_code}", f"address:{address}"]


@contextlib.contextmanager
def _exclusive(keys):
    """A transaction in which no other process counts or spends the same keys.

    Without it two servers could both read "2 sent this hour" and both send the third and a fourth.
    """
    if is_postgres():
        with db.atomic():
            for key in sorted(keys):  # always the same order: no deadlock between two requests
                db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            yield
        return
    # SQLite: take the write lock at BEGIN, so that the counts read are the counts written against.
    with db.atomic(lock_type="IMMEDIATE"):
        yield


def allow(keys, now):
    """Count one request against every key and return True, or return False (counting nothing) when one is spent."""
    with _exclusive(keys):
        for key in keys:
            per_hour, per_day = LIMITS[key.split(":", 1)[0]]
            if RateEvent.count_since(key, now - HOUR) >= per_hour or RateEvent.count_since(key, now - DAY) >= per_day:
                return False
        RateEvent.insert_many([{"key": key, "at": now} for key in keys]).execute()
    if now.minute == 0:
        RateEvent.forget_before(now - 2 * DAY)
    return True
