"""Limits on SMS sends, kept in the database so they hold across several server processes."""

import atexit
import contextlib
import datetime
import fcntl
import os
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


def is_spent(key, this_hour, today):
    """Whether a key with these counts may not be spent again."""
    per_hour, per_day = limits_of(key)
    return this_hour >= per_hour or today >= per_day


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
    with sqlite_writer_turn(), db.atomic(lock_type="IMMEDIATE"):
        yield


_LOCK_FILE = {}  # "key": (process id, database path), "file": the open lock file
atexit.register(lambda: _LOCK_FILE.get("file") and _LOCK_FILE["file"].close())


@contextlib.contextmanager
def sqlite_writer_turn():
    """This thread's turn, then this process's, at SQLite's write lock.

    SQLite makes a writer that finds the lock taken sleep in growing steps (1 ms, 2, 5, ... up to
    100 ms), so a few threads or server processes racing for it make a long tail. Threads queue on
    a lock of this process, processes on an flock of a file beside the database, which wakes the
    next one as soon as it is free. Other writers (imports, the back office) still meet SQLite's own
    lock and its busy timeout.
    """
    with SQLITE_WRITERS:
        lock_file = _lock_file()
        if lock_file is None:
            yield
            return
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _lock_file():
    path = getattr(db.obj, "database", "")
    if not path or path == ":memory:" or str(path).startswith("file:"):
        return None
    # Keyed by process: an flock belongs to the open file, which a fork would share.
    key = (os.getpid(), str(path))
    if _LOCK_FILE.get("key") != key:
        if _LOCK_FILE.get("file") is not None and _LOCK_FILE["key"][0] == key[0]:
            _LOCK_FILE["file"].close()
        _LOCK_FILE.update(key=key, file=open(f"{path}-writers", "a"))  # noqa: SIM115 - kept open for the process
    return _LOCK_FILE["file"]


def spend(keys, now):
    """Inside exclusive(keys): count one request against every key and return True, or return
    False (counting nothing) when one is spent."""
    for key in keys:
        if is_spent(key, *RateEvent.counts_within(key, now - HOUR, now - DAY, limits_of(key)[1])):
            return False
    RateEvent.insert_many([{"key": key, "at": now} for key in keys]).execute()
    forget = prune_due(now)
    if forget is not None:
        RateEvent.forget_before(forget)
    return True


_PRUNED = {"at": None}
_PRUNE_LOCK = threading.Lock()


def prune_due(now):
    """Once an hour per process: the moment before which events no longer count against any limit, or None.

    The delete reads the whole table (no index leads with the time), so it is not left to every
    request of some minute of the hour.
    """
    with _PRUNE_LOCK:
        last = _PRUNED["at"]
        if last is not None and last <= now < last + HOUR:
            return None
        _PRUNED["at"] = now
    return now - 2 * DAY


def allow(keys, now):
    """spend() in a transaction of its own."""
    with exclusive(keys):
        return spend(keys, now)
