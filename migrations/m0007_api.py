"""The hospital feed: facilities' API keys and the queue of encounters for unknown people."""

from models.api import ApiKey
from models.api import UnmatchedEncounter


def up(database):
    database.create_tables([ApiKey, UnmatchedEncounter], safe=True)
