"""PostgreSQL: the search index keeps the words of names and addresses; codes are found by B-tree prefix.

Each citizen's health code, ID numbers, insurance number and phone are lexemes of their own,
nearly all unique, and they made most of the GIN search index's work: loading 300,000 citizens
took 9.2 s with the old index and 2.8 s with this one (PostgreSQL 15, the same rows). A search
term still matches a citizen when it starts a word of the search text, as on SQLite: a word of
the name or address through this index, or a code through the prefix indexes below
(models.citizens.Citizen.matching). SQLite's FTS index is unchanged.
"""

from peewee import PostgresqlDatabase

# The search text's lexemes less the citizen's own codes; Citizen.matching repeats it verbatim.
WORDS_TSVECTOR = (
    "ts_delete(to_tsvector('simple', search_text), array_remove(ARRAY[lower(health_code), national_id, "
    "old_national_id, lower(insurance_number), phone, substr(phone, 2)]::text[], NULL))"
)
STATEMENTS = (
    f"CREATE INDEX IF NOT EXISTS citizen_search_words ON citizen USING gin (({WORDS_TSVECTOR}))",
    "DROP INDEX IF EXISTS citizen_search_tsv",
    # text_pattern_ops answers LIKE 'prefix%' whatever the database's collation, and = as well,
    # so these replace the plain indexes on phone and national_id.
    "DROP INDEX IF EXISTS citizen_phone",
    "CREATE INDEX IF NOT EXISTS citizen_phone ON citizen (phone text_pattern_ops)",
    "DROP INDEX IF EXISTS citizen_national_id",
    "CREATE INDEX IF NOT EXISTS citizen_national_id ON citizen (national_id text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS citizen_old_national_id_prefix ON citizen (old_national_id text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS citizen_health_code_prefix ON citizen (lower(health_code) text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS citizen_insurance_number_prefix ON citizen (lower(insurance_number) text_pattern_ops)",
)


def up(database):
    if not isinstance(database, PostgresqlDatabase):
        return
    database.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for statement in STATEMENTS:
        database.execute_sql(statement)
