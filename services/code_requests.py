"""A citizen's request for a lookup code as one short write: the match, the send limits, the challenge, the audit row.

The lookup's POST is the public site's busiest write, and every request writes: the limits are
counted and spent, a challenge is opened whether or not the details match (so that nothing tells
them apart), and the attempt is audited. Composed by peewee at every request, those statements
cost several times what the database spends answering them, so they are written out once here,
from the models' own table and column names, and run on the raw connection:

- SQLite: one BEGIN IMMEDIATE transaction, taken once per request (threads and server processes
  queue for it first, rate_limits.sqlite_writer_turn: SQLite makes a waiting writer sleep);
- PostgreSQL: two round trips, the per-key advisory locks with the counts and the match, then the
  writes with the COMMIT.

What is stored is exactly what models.lookup and models.audit store (tests compare the rows).
"""

import contextlib
import json
import secrets

from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.base import is_postgres
from models.base import utcnow
from models.citizens import Citizen
from models.duplicates import CitizenAlias
from models.lookup import LookupChallenge
from models.lookup import RateEvent
from services import otp
from services import rate_limits


def _table(model):
    return f'"{model._meta.table_name}"'


def _columns(*fields):
    return ", ".join(f'"{field.column_name}"' for field in fields)


def _insert(model, fields, rows=1):
    marks = "(" + ", ".join("?" * len(fields)) + ")"
    return f"INSERT INTO {_table(model)} ({_columns(*fields)}) VALUES {', '.join([marks] * rows)}"


_C, _A, _R = Citizen, CitizenAlias, RateEvent
# One row per limit key: (position, events in the last day, of which in the last hour), counted
# among the key's newest events only as far as its daily limit (spend never stores more than
# that, so no key's count can grow with traffic); then the citizen the details match, or NULL.
_COUNT_ONE = (
    'SELECT {n}, COUNT(*), COALESCE(SUM(CASE WHEN "at" > ? THEN 1 ELSE 0 END), 0) FROM '
    f'(SELECT "at" FROM {_table(_R)} WHERE "key" = ? AND "at" > ? ORDER BY "at" DESC LIMIT ?) AS recent{{n}}'
)
_MATCH = (
    f"SELECT {len(rate_limits.LIMITS)}, (SELECT matched.id FROM ("
    f"SELECT c.{_columns(_C.id)} AS id FROM {_table(_C)} c WHERE c.{_columns(_C.health_code)} = ? "
    f"AND c.{_columns(_C.phone)} = ? UNION ALL "
    f"SELECT c.{_columns(_C.id)} FROM {_table(_C)} c JOIN {_table(_A)} a ON a.{_columns(_A.citizen)} = c.{_columns(_C.id)} "
    f"WHERE a.{_columns(_A.kind)} = 'health_code' AND a.{_columns(_A.value)} = ? AND c.{_columns(_C.phone)} = ?"
    ") AS matched LIMIT 1), 0"
)
COUNTS_AND_MATCH = " UNION ALL ".join([_COUNT_ONE.format(n=n) for n in range(len(rate_limits.LIMITS))] + [_MATCH])
_RATE_FIELDS = (_R.key, _R.at, _R.created_at, _R.updated_at)
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
INSERT_EVENTS = _insert(_R, _RATE_FIELDS, rows=len(rate_limits.LIMITS))
INSERT_CHALLENGE = _insert(LookupChallenge, _CHALLENGE_FIELDS)
INSERT_AUDIT = _insert(AuditEvent, _AUDIT_FIELDS)
KILL_REPLACED = f'UPDATE {_table(LookupChallenge)} SET "dead" = ? WHERE "token" = ?'
PRUNE_EVENTS = f'DELETE FROM {_table(_R)} WHERE "at" < ?'
LOCK_KEYS = "SELECT " + ", ".join(["pg_advisory_xact_lock(hashtext(?))"] * len(rate_limits.LIMITS))


def _pg(sql):
    return sql.replace("?", "%s")


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
    for position, first, second in rows:
        if position == len(keys):
            citizen_id = first
            continue
        per_hour, per_day = rate_limits.limits_of(keys[position])
        if first >= per_day or second >= per_hour:
            allowed = False
    return allowed, citizen_id


def _writes(secret, now, stamp, keys, citizen_id, allowed, phone, health_code, address, replaces):
    """The statements to run after the counts, as (sql, params), and what request_code returns."""
    if not allowed:
        detail = json.dumps({"outcome": "rate_limited"}, sort_keys=True)
        audit = (Action.LOOKUP, "citizen", None, detail, address, stamp, stamp)
        return [(INSERT_AUDIT, (stamp, *audit))], ("limited", None, None, None)
    code, token = otp.new_code(), secrets.token_urlsafe(32)
    statements = []
    events = []
    for key in keys:
        events += [key, now, stamp, stamp]
    statements.append((INSERT_EVENTS, events))
    if replaces:
        statements.append((KILL_REPLACED, (True, replaces)))
    challenge = (
        token,
        citizen_id,
        phone,
        health_code or "",
        otp.code_hash(secret, token, code),
        now + otp.CODE_LIFETIME,
        0,
        False,
        "lookup",
        citizen_id is not None,
        stamp,
        stamp,
    )
    statements.append((INSERT_CHALLENGE, challenge))
    outcome = "sent" if citizen_id else "no_match"
    detail = json.dumps({"outcome": outcome, "resend": bool(replaces)}, sort_keys=True)
    statements.append((INSERT_AUDIT, (stamp, Action.LOOKUP, "citizen", citizen_id, detail, address, stamp, stamp)))
    prune = rate_limits.prune_due(now)
    if prune is not None:
        statements.append((PRUNE_EVENTS, (prune,)))
    return statements, ("sent", citizen_id, token, code)


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
        cursor.execute(_pg(f"BEGIN; {LOCK_KEYS}; {COUNTS_AND_MATCH}"), [*sorted(keys), *count_params])
        allowed, citizen_id = _decide(cursor.fetchall(), keys)
        statements, result = _writes(
            secret, now, stamp, keys, citizen_id, allowed, phone, health_code, address, replaces
        )
        sql = "; ".join(_pg(statement) for statement, _params in statements) + "; COMMIT"
        cursor.execute(sql, [value for _statement, params in statements for value in params])
    except BaseException:
        # The connection is in autocommit mode, where psycopg2's rollback() does nothing. A broken
        # connection cannot roll back: the error that broke it is the one to raise.
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK")
        raise
    return result
