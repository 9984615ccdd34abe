"""A citizen's request for a lookup code as one short write: the match, the send limits, the challenge, the audit row.

The lookup's POST is the public site's busiest write, and every request writes: the limits are
counted and spent, a challenge is opened whether or not the details match (so that nothing tells
them apart), and the attempt is audited. Composed by peewee at every request, those statements
cost several times what the database spends answering them, so they are written out once, from
the models' own table and column names (the counts and the match are the models' own statements,
RateEvent.COUNT_NEWEST and Citizen.id_matching_sql), and run on the raw connection:

- SQLite: one BEGIN IMMEDIATE transaction, taken once per request (threads and server processes
  queue for it first, rate_limits.sqlite_writer_turn: SQLite makes a waiting writer sleep);
- PostgreSQL: two round trips, the per-key advisory locks with the counts and the match, then the
  writes with the COMMIT.

What is stored is exactly what models.lookup and models.audit store (tests compare the rows).
"""

import contextlib

from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.base import for_database
from models.base import is_postgres
from models.base import quoted
from models.base import utcnow
from models.citizens import Citizen
from models.lookup import LookupChallenge
from models.lookup import RateEvent
from services import otp
from services import rate_limits


def _insert(model, fields, rows=1):
    marks = "(" + ", ".join("?" * len(fields)) + ")"
    return f"INSERT INTO {quoted(model)} ({quoted(model, *fields)}) VALUES {', '.join([marks] * rows)}"


# One row per limit key, (position, events in the last day, of which in the last hour), from
# RateEvent.counts_within's statement; then the citizen Citizen.id_matching finds, or NULL.
COUNTS_AND_MATCH = " UNION ALL ".join(
    [f"SELECT {n}, * FROM ({RateEvent.COUNT_NEWEST}) AS counts{n}" for n in range(len(rate_limits.LIMITS))]
    + [f"SELECT {len(rate_limits.LIMITS)}, ({Citizen.id_matching_sql()}), 0"]
)
_RATE_FIELDS = (RateEvent.key, RateEvent.at, RateEvent.created_at, RateEvent.updated_at)
_CHALLENGE_FIELDS = (
    LookupChallenge.token,
    LookupChallenge.citizen_id,
    LookupChallenge.phone,
    LookupChallenge.health_code,
    LookupChallenge.code_hash,
    LookupChallenge.expires_at,
    LookupChallenge.attempts,
    LookupChallenge.dead,
    LookupChallenge.purpose,
    LookupChallenge.sent,
    LookupChallenge.created_at,
    LookupChallenge.updated_at,
)
_AUDIT_FIELDS = (
    AuditEvent.at,
    AuditEvent.action,
    AuditEvent.object_type,
    AuditEvent.citizen_id,
    AuditEvent.detail,
    AuditEvent.address,
    AuditEvent.created_at,
    AuditEvent.updated_at,
)
INSERT_EVENTS = _insert(RateEvent, _RATE_FIELDS, rows=len(rate_limits.LIMITS))
INSERT_CHALLENGE = _insert(LookupChallenge, _CHALLENGE_FIELDS)
INSERT_AUDIT = _insert(AuditEvent, _AUDIT_FIELDS)
KILL_REPLACED = f'UPDATE {quoted(LookupChallenge)} SET "dead" = ? WHERE "token" = ?'
PRUNE_EVENTS = f'DELETE FROM {quoted(RateEvent)} WHERE "at" < ?'
LOCK_KEYS = "SELECT " + ", ".join(["pg_advisory_xact_lock(hashtext(?))"] * len(rate_limits.LIMITS))


def request_code(secret, now, phone, health_code, address, replaces=None):
    """Count, spend and open a challenge for these details; return (outcome, citizen_id, token, code).

    outcome is "sent" (whether or not the details matched a citizen: citizen_id tells the
    caller, who texts the code only then) or "limited" (nothing spent, token and code None).
    replaces: the token of the browser's previous challenge, which dies with this one.
    """
    keys = rate_limits.keys_for(phone, health_code, address)
    stamp = utcnow()
    count_params = []
    for key in keys:
        count_params += [now - rate_limits.HOUR, key, now - rate_limits.DAY, rate_limits.limits_of(key)[1]]
    count_params += [health_code, phone, health_code, phone]
    if is_postgres():
        return _on_postgres(secret, now, stamp, keys, count_params, phone, health_code, address, replaces)
    return _on_sqlite(secret, now, stamp, keys, count_params, phone, health_code, address, replaces)


def _decide(rows, keys):
    """(allowed, citizen_id) from the rows of COUNTS_AND_MATCH."""
    allowed, citizen_id = True, None
    for position, today, this_hour in rows:
        if position == len(keys):
            citizen_id = today
        elif rate_limits.is_spent(keys[position], this_hour, today):
            allowed = False
    return allowed, citizen_id


def _audit_row(stamp, citizen_id, address, **detail):
    return (stamp, Action.LOOKUP, "citizen", citizen_id, AuditEvent.encode_detail(detail), address, stamp, stamp)


def _writes(secret, now, stamp, keys, citizen_id, allowed, phone, health_code, address, replaces):
    """The statements to run after the counts, as (sql, params), and what request_code returns."""
    if not allowed:
        return [(INSERT_AUDIT, _audit_row(stamp, None, address, outcome="rate_limited"))], ("limited", None, None, None)
    fields, code = otp.new_challenge(secret, now, citizen_id, phone, health_code)
    fields.update(created_at=stamp, updated_at=stamp)
    events = [value for key in keys for value in (key, now, stamp, stamp)]
    statements = [(INSERT_EVENTS, events)]
    if replaces:
        statements.append((KILL_REPLACED, (True, replaces)))
    statements.append((INSERT_CHALLENGE, [fields.get(f.name, f.default) for f in _CHALLENGE_FIELDS]))
    outcome = "sent" if citizen_id else "no_match"
    statements.append((INSERT_AUDIT, _audit_row(stamp, citizen_id, address, outcome=outcome, resend=bool(replaces))))
    prune = rate_limits.prune_due(now)
    if prune is not None:
        statements.append((PRUNE_EVENTS, (prune,)))
    return statements, ("sent", citizen_id, fields["token"], code)


def _on_sqlite(secret, now, stamp, keys, count_params, phone, health_code, address, replaces):
    with rate_limits.sqlite_writer_turn():
        cursor = db.connection().cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            allowed, citizen_id = _decide(cursor.execute(COUNTS_AND_MATCH, count_params).fetchall(), keys)
            statements, result = _writes(
                secret, now, stamp, keys, citizen_id, allowed, phone, health_code, address, replaces
            )
            for sql, params in statements:
                cursor.execute(sql, params)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    return result


def _on_postgres(secret, now, stamp, keys, count_params, phone, health_code, address, replaces):
    cursor = db.connection().cursor()
    try:
        # Always the same order of keys: no deadlock between two requests. Each statement of a
        # multi-statement query reads with its own snapshot, so the counts see every transaction
        # that held one of the locks before this one.
        cursor.execute(for_database(f"BEGIN; {LOCK_KEYS}; {COUNTS_AND_MATCH}"), [*sorted(keys), *count_params])
        allowed, citizen_id = _decide(cursor.fetchall(), keys)
        statements, result = _writes(
            secret, now, stamp, keys, citizen_id, allowed, phone, health_code, address, replaces
        )
        sql = for_database("; ".join(statement for statement, _params in statements) + "; COMMIT")
        cursor.execute(sql, [value for _statement, params in statements for value in params])
    except BaseException:
        # The connection is in autocommit mode, where psycopg2's rollback() does nothing. A broken
        # connection cannot roll back: the error that broke it is the one to raise.
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK")
        raise
    return result
