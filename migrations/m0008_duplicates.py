"""Possible duplicate persons queued for review, and the identifiers of merged records."""

from models.duplicates import CitizenAlias
from models.duplicates import DuplicateCandidate


def up(database):
    database.create_tables([DuplicateCandidate, CitizenAlias], safe=True)
    # Finding a new citizen's namesakes born the same day in the same commune, at import speed.
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "citizen_date_of_birth_ward_id" ON "citizen" ("date_of_birth", "ward_id")'
    )
