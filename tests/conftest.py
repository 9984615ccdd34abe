"""Fixtures: a real database per test, on SQLite and on PostgreSQL when it answers."""

import os
import shutil

import pytest
from peewee import OperationalError

from models.base import close_database
from models.base import db
from models.base import open_database
from tests.sms_gateway import gateway  # noqa: F401  (a fixture for every test module)

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Static reference data that migrations load once; every other table is emptied between tests.
KEPT_TABLES = {"province", "ward", "schema_migration"}
TEST_SECRET = "test-secret-key-not-for-production"


def _require(name):
    return os.environ.get(name) == "1"


def _migrate(url):
    from migrations import migrate

    database = open_database(url)
    db.initialize(database)
    with db.connection_context():
        migrate()
    database.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """The test PostgreSQL, reset and migrated once per session; None when it does not answer."""
    try:
        database = open_database(PG_URL)
        database.connect()
    except OperationalError as exc:
        if _require("REQUIRE_POSTGRES"):
            pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL at {PG_URL} does not answer: {exc}")
        return None
    database.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
    database.execute_sql("CREATE SCHEMA public")
    database.close()
    _migrate(PG_URL)
    return PG_URL


def _empty_postgres(url):
    """Empty every table, then put back what the migrations seed: as fresh as SQLite's template copy."""
    from migrations import available

    database = open_database(url)
    db.initialize(database)
    with database.connection_context():
        tables = [t for t in database.get_tables() if t not in KEPT_TABLES]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            database.execute_sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        for _name, module in available():
            seed = getattr(module, "seed_defaults", None)
            if seed:
                with db.atomic():
                    seed()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path, sqlite_template):
    """A fresh, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "portal.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip("PostgreSQL is not answering (set REQUIRE_POSTGRES=1 to make this a failure)")
    _empty_postgres(url)
    return url


@pytest.fixture
def app(database_url, tmp_path):
    from app import create_app

    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET,
            "PASSWORD_HASH_COST": {"time_cost": 1, "memory_cost": 64, "parallelism": 1},
            "SMS_BACKEND": "file",
            "SMS_OUTBOX": str(tmp_path / "sms-outbox.jsonl"),
        }
    )
    db.connect(reuse_if_open=True)
    yield application
    close_database(db.obj)


@pytest.fixture
def client(app):
    return app.test_client()
