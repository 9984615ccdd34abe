"""The database proxy, the base model and connection set-up."""

import datetime
from pathlib import Path

from peewee import DatabaseProxy
from peewee import DateTimeField
from peewee import Model
from peewee import PostgresqlDatabase
from playhouse.db_url import connect

db = DatabaseProxy()

PROJECT_DIR = Path(__file__).resolve().parent.parent
SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal", "cache_size": -64000}


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


def open_database(url):
    """Build a peewee database from a URL; relative SQLite paths are under the project."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        path = PROJECT_DIR / url[len("sqlite:///") :]
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if url.startswith("sqlite"):
        return connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False, timeout=10)
    return connect(url)


def is_postgres():
    """True when the bound database is PostgreSQL."""
    return isinstance(db.obj, PostgresqlDatabase)
