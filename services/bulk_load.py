"""Loading many rows into an empty table: its indexes built once at the end instead of row by row.

PostgreSQL's manual advises it for populating a database ("Populating a Database": remove indexes
and foreign keys, load, create them again), and SQLite gains the same way: one sort per index
instead of a random B-tree insert per row and index. Everything happens inside the loading
transaction; both databases' DDL is transactional, so a rollback restores the indexes as they were.

On PostgreSQL dropping an index locks the table against readers until the commit. That is why
only an empty table is loaded this way: nobody has anything to read there yet.
"""

import dataclasses

from models.base import db
from models.base import is_postgres
from models.base import quoted


@dataclasses.dataclass
class Dropped:
    """What was dropped from a table, as the statements that make it again."""

    table: str
    indexes: list
    foreign_keys: list


def lock_if_empty(model):
    """True, with the table locked against every other session until the commit, when it has no rows.

    On SQLite the caller's write transaction already keeps other writers out, and readers keep
    their own snapshot.
    """
    if model.select().exists():
        return False
    if not is_postgres():
        return True
    db.execute_sql(f"LOCK TABLE {quoted(model)} IN ACCESS EXCLUSIVE MODE")
    return not model.select().exists()  # a row may have come in before the lock


def drop_indexes(model):
    """Drop the table's secondary indexes (GIN ones stay) and, on PostgreSQL, its foreign keys; return a Dropped."""
    table = model._meta.table_name
    if is_postgres():
        # Indexes behind a constraint (the primary key, UNIQUE constraints) stay: they go with it.
        # GIN indexes stay too: the server maintains them during each COPY while the loading process
        # prepares the next batch, and building one at the end (it cannot be built in parallel before
        # PostgreSQL 18) left the other core idle: a million citizens loaded in 60 s instead of 69.
        indexes = db.execute_sql(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_am a ON a.oid = i.relam WHERE x.indrelid = %s::regclass AND a.amname <> 'gin' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY i.relname",
            (table,),
        ).fetchall()
        foreign_keys = db.execute_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            (table,),
        ).fetchall()
    else:
        # Indexes SQLite made itself (UNIQUE and PRIMARY KEY columns) have no SQL and cannot be dropped.
        indexes = db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY name",
            (table,),
        ).fetchall()
        foreign_keys = []  # SQLite cannot drop a foreign key; its check is a lookup in the same process
    for name, _definition in indexes:
        db.execute_sql(f'DROP INDEX "{name}"')
    for name, _definition in foreign_keys:
        db.execute_sql(f'ALTER TABLE {quoted(model)} DROP CONSTRAINT "{name}"')
    return Dropped(table=table, indexes=list(indexes), foreign_keys=list(foreign_keys))


def restore_indexes(dropped):
    """Build the dropped indexes again and add the foreign keys back (checking every row at once)."""
    if is_postgres():
        # Sorting for an index build: more memory than the default 64 MB makes fewer passes.
        db.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for _name, definition in dropped.indexes:
        db.execute_sql(definition)
    for name, definition in dropped.foreign_keys:
        db.execute_sql(f'ALTER TABLE "{dropped.table}" ADD CONSTRAINT "{name}" {definition}')


class IdBlock:
    """Ids for rows inserted with their id given, counted here from the largest one in use.

    The caller has the table to itself (lock_if_empty): on SQLite its write lock, and the table
    has no AUTOINCREMENT, so the ids SQLite would give are the ones after the largest; on
    PostgreSQL the table's lock keeps every other insert out, and the table's sequence is drawn
    once here and set past the last id given by close(). Counting here, taking ids needs no
    statement: on PostgreSQL the batches' COPYs can run while the next batch is prepared.
    """

    def __init__(self, model):
        self.model = model
        self.sequence = None
        if is_postgres():
            (self.sequence,) = db.execute_sql(
                "SELECT pg_get_serial_sequence(%s, %s)", (model._meta.table_name, model._meta.primary_key.column_name)
            ).fetchone()
            (self.next,) = db.execute_sql("SELECT nextval(%s)", (self.sequence,)).fetchone()
        else:
            (largest,) = db.execute_sql(f"SELECT max(rowid) FROM {quoted(model)}").fetchone()
            self.next = (largest or 0) + 1
        self.first = self.next

    def take(self, count):
        """count new ids, ascending."""
        if count <= 0:
            return []
        ids = list(range(self.next, self.next + count))
        self.next += count
        return ids

    def close(self):
        """On PostgreSQL, set the sequence to the last id given: later inserts draw the ones after."""
        if self.sequence is not None and self.next > self.first:
            db.execute_sql("SELECT setval(%s, %s)", (self.sequence, self.next - 1))
