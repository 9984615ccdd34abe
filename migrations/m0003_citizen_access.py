"""Tables for the citizens' lookup: code challenges, send limits, sessions, correction requests."""

from models.corrections import CorrectionRequest
from models.lookup import CitizenSession
from models.lookup import LookupChallenge
from models.lookup import RateEvent


def up(database):
    database.create_tables([LookupChallenge, RateEvent, CitizenSession, CorrectionRequest], safe=True)
