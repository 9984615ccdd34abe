"""Limits on SMS sends, kept in the database so they hold across several server processes."""

import contextlib
import datetime
import threading

from models.base import db
from models.base import is_postgres
from models.lookup import RateEvent

# The threads of this process queue here for SQLite's write lock (see exclusive()).
SQLITE_WRITERS = threading.Lock()
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


def limits_of(key):
    """(per hour, per day) for a key."""
    return LIMITS[key.split(":", 1)[0]]


@contextlib.contextmanager
def exclusive(keys):
    """A transaction in which no other process counts or spends the same keys.

    Without it two servers could both read "2 sent this hour" and both send the third and a fourth.
    Whatever else the caller writes inside it commits (or rolls back) with the count.
    """
    if is_postgres():
        with db.atomic():
            for key in sorted(keys):  # always the same order: no deadlock between two requests
                db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            yield
        return
    # SQLite: take the write lock at BEGIN, so that the counts read are the counts written against.
    # The threads of this process queue for it here first: SQLite makes a waiting writer sleep
    # in growing steps (up to 100 ms), so a few threads racing for it make a long tail.
    with SQLITE_WRITERS, db.atomic(lock_type="IMMEDIATE"):
        yield


def spend(keys, now):
    """Inside exclusive(keys): count one request against every key and return True, or return
    False (counting nothing) when one is spent."""
    for key in keys:
        per_hour, per_day = limits_of(key)
        this_hour, today = RateEvent.counts_within(key, now - HOUR, now - DAY, per_day)
        if this_hour >= per_hour or today >= per_day:
            return False
    RateEvent.insert_many([{"key": key, "at": now} for key in keys]).execute()
    if now.minute == 0 and now.second < 10:
        RateEvent.forget_before(now - 2 * DAY)
    return True


def allow(keys, now):
    """spend() in a transaction of its own."""
    with exclusive(keys):
        return spend(keys, now)
