"""Citizens' self-service access: one-time code challenges, send limits and sessions."""

import datetime

from peewee import SQL
from peewee import BooleanField
from peewee import Case
from peewee import CharField
from peewee import DateTimeField
from peewee import IntegerField
from peewee import fn

from models.base import BaseModel


class LookupChallenge(BaseModel):
    """One SMS code sent (or pretended sent) for one browser; the code itself is never stored."""

    token = CharField(max_length=64, unique=True)
    # Not foreign keys: a challenge for details that matched nobody has no citizen, and
    # these short-lived rows must never block a citizen record's deletion.
    citizen_id = IntegerField(null=True)
    phone = CharField(max_length=10)
    health_code = CharField(max_length=20)
    code_hash = CharField(max_length=64)
    expires_at = DateTimeField()
    attempts = IntegerField(default=0)
    used_at = DateTimeField(null=True)
    dead = BooleanField(default=False)
    # What the code opens ("lookup", "declare"): a code asked for one purpose never serves another.
    purpose = CharField(max_length=16, default="lookup")
    # True when the code was texted; an unsent code (details that matched nobody) never succeeds.
    sent = BooleanField(default=False)

    def is_open(self, now):
        return not self.dead and self.used_at is None and self.expires_at > now


class RateEvent(BaseModel):
    """One counted request against a limit key (a phone, a health code, an address)."""

    key = CharField(max_length=96)
    at = DateTimeField()

    class Meta:
        indexes = ((("key", "at"), False),)

    @classmethod
    def count_since(cls, key, since):
        return cls.select().where((cls.key == key) & (cls.at > since)).count()

    @classmethod
    def counts_within(cls, key, recent_since, since, cap):
        """(events after recent_since, events after since) for key, counting at most its newest cap events.

        A limit stops storing events once reached, so cap (the daily limit) bounds the work whatever the traffic.
        """
        newest = cls.select(cls.at).where((cls.key == key) & (cls.at > since)).order_by(cls.at.desc()).limit(cap)
        recent = fn.SUM(Case(None, [(newest.c.at > recent_since, 1)], 0))
        found = cls.select(fn.COUNT(SQL("*")), recent).from_(newest).tuples().first()
        return int(found[1] or 0), int(found[0])

    @classmethod
    def forget_before(cls, moment):
        """Drop events too old to count against any limit."""
        return cls.delete().where(cls.at < moment).execute()


class CitizenSession(BaseModel):
    """A citizen's short session after a verified code; the cookie holds only its token."""

    token = CharField(max_length=64, unique=True)
    citizen_id = IntegerField()
    started_at = DateTimeField()
    ended_at = DateTimeField(null=True)

    LIFETIME = datetime.timedelta(minutes=15)

    def is_valid(self, now):
        return self.ended_at is None and now < self.started_at + self.LIFETIME
