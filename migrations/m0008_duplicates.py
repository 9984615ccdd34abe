"""Possible duplicate persons queued for review, and the identifiers of merged records."""

from models.duplicates import CitizenAlias
from models.duplicates import DuplicateCandidate


def up(database):
    database.create_tables([DuplicateCandidate, CitizenAlias], safe=True)
    database.execute_sql(
        'CREATE UNIQUE INDEX IF NOT EXISTS "duplicate_candidate_live_pair" '
        'ON "duplicate_candidate" ("citizen_a_id", "citizen_b_id") WHERE status <> \'merged\''
    )
    # Finding a new citizen's namesakes born the same day in the same commune, at import speed.
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "citizen_date_of_birth_ward_id" ON "citizen" ("date_of_birth", "ward_id")'
    )
