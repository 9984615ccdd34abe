"""The database proxy, the base model and connection set-up."""

import datetime
import json
from pathlib import Path

from peewee import SQL
from peewee import DatabaseProxy
from peewee import DateTimeField
from peewee import Model
from peewee import NodeList
from peewee import PostgresqlDatabase
from peewee import Tuple
from playhouse.db_url import connect
from playhouse.pool import PooledDatabase
from playhouse.pool import PooledSqliteDatabase

db = DatabaseProxy()

PROJECT_DIR = Path(__file__).resolve().parent.parent
SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal", "cache_size": -64000}
SQLITE_BUSY_MS = 10_000
# Waitress serves with 4 threads; the rest is headroom for background threads and CLI work.
# Idle connections are recycled after 5 minutes; a request waits at most 10 s for a free one.
POOL_SETTINGS = {"max_connections": 16, "stale_timeout": 300, "timeout": 10}


def utcnow():
    """Naive UTC now, as stored in every timestamp column."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class BaseModel(Model):
    """Every table has created_at and updated_at."""

    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        database = db
        legacy_table_names = False

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)


def open_database(url, pooled=False):
    """Build a peewee database from a URL; relative SQLite paths are under the project.

    pooled: keep connections open between requests (the server). Opening one costs more than a
    small page: a TCP connection and authentication on PostgreSQL, and on SQLite the pragmas plus
    a WAL checkpoint each time the last connection closes.
    """
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        path = PROJECT_DIR / url[len("sqlite:///") :]
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if url.startswith("sqlite"):
        if pooled and ":memory:" not in url:
            # The pool's own `timeout` is how long to wait for a free connection, so SQLite's
            # busy timeout goes in as a pragma.
            pragmas = {**SQLITE_PRAGMAS, "busy_timeout": SQLITE_BUSY_MS}
            database = PooledSqliteDatabase(
                url[len("sqlite:///") :], pragmas=pragmas, check_same_thread=False, **POOL_SETTINGS
            )
            return database
        return connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False, timeout=SQLITE_BUSY_MS / 1000)
    if pooled:
        scheme, rest = url.split("://", 1)
        return connect(f"{scheme}+pool://{rest}", **POOL_SETTINGS)
    return connect(url)


def close_database(database):
    """Close every connection of database, the pooled ones included."""
    if isinstance(database, PooledDatabase):
        database.close_all()
    elif not database.is_closed():
        database.close()


class PreparedQuery:
    """A SELECT whose SQL is composed once per kind of database, then only executed.

    Composing the SQL of a joined query over wide models costs peewee more than the database
    spends answering it by an indexed key, and the citizens' pages run the same few queries with
    another citizen's id each time. build(*params) returns the peewee query; it qualifies when its
    parameters are exactly params, in order (checked when it is composed). One that does not is
    composed at every call, as usual.
    """

    _UNKNOWN = object()

    def __init__(self, build):
        self.build = build
        self.compiled = {}  # database class -> (query, sql), or None when the query does not qualify

    def __call__(self, *params):
        """The query's rows for params, as peewee would give them (models, joined models attached)."""
        kind = type(db.obj)
        entry = self.compiled.get(kind, self._UNKNOWN)
        if entry is self._UNKNOWN:
            query = self.build(*params)
            sql, built = query.sql()
            self.compiled[kind] = (query, sql) if list(built) == list(params) else None
            return list(query)
        if entry is None:
            return list(self.build(*params))
        query, sql = entry
        return list(query._get_cursor_wrapper(db.execute_sql(sql, params)))


def any_of(field, values):
    """field IN values, the values passed as one parameter: an array on PostgreSQL, JSON on SQLite.

    peewee composes one node per value of an IN list; for the thousands of keys of an import batch
    that costs more than the database spends looking them up.
    """
    values = list(values)
    if not values:
        return SQL("1 = 0")
    if is_postgres():
        return NodeList((field, SQL("= ANY(%s)", (values,))))
    return NodeList((field, SQL("IN (SELECT value FROM json_each(?))", (json.dumps(values, default=str),))))


def pairs_in(first, second, pairs):
    """(first, second) is one of pairs (exactly, not any first with any second), as one or two parameters."""
    pairs = list(pairs)
    if not pairs:
        return SQL("1 = 0")
    if is_postgres():
        firsts, seconds = [a for a, _b in pairs], [b for _a, b in pairs]
        return NodeList((Tuple(first, second), SQL("IN (SELECT * FROM unnest(%s, %s))", (firsts, seconds))))
    pick = "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)"
    return NodeList((Tuple(first, second), SQL(f"IN ({pick})", (json.dumps(pairs, default=str),))))


def quoted(model, *fields):
    """The model's quoted table name, or its fields' quoted column names joined by commas."""
    if not fields:
        return f'"{model._meta.table_name}"'
    return ", ".join(f'"{field.column_name}"' for field in fields)


def for_database(sql):
    """SQL written with ? placeholders, in the bound database's style (%s for psycopg2)."""
    return sql.replace("?", "%s") if is_postgres() else sql


def is_postgres():
    """True when the bound database is PostgreSQL."""
    return isinstance(db.obj, PostgresqlDatabase)
