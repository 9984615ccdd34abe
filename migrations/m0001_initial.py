"""The initial schema, with diacritic-free search indexes and an append-only audit log."""

from peewee import PostgresqlDatabase

from models import ALL_MODELS

SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS citizen_fts USING fts5("
    "search_text, content='citizen', content_rowid='id', tokenize='unicode61 remove_diacritics 0', prefix='2 3')",
    "CREATE TRIGGER IF NOT EXISTS citizen_fts_insert AFTER INSERT ON citizen BEGIN "
    "INSERT INTO citizen_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS citizen_fts_delete AFTER DELETE ON citizen BEGIN "
    "INSERT INTO citizen_fts(citizen_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS citizen_fts_update AFTER UPDATE OF search_text ON citizen BEGIN "
    "INSERT INTO citizen_fts(citizen_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO citizen_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event BEGIN "
    "SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event BEGIN "
    "SELECT RAISE(ABORT, 'audit events are append-only'); END",
)

POSTGRES_SEARCH = (
    "CREATE INDEX IF NOT EXISTS citizen_search_tsv ON citizen USING gin (to_tsvector('simple', search_text))",
    "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
    "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
)


def up(database):
    database.create_tables(ALL_MODELS, safe=True)
    statements = POSTGRES_SEARCH if isinstance(database, PostgresqlDatabase) else SQLITE_SEARCH
    for statement in statements:
        database.execute_sql(statement)
