"""Citizens' self-service access: one-time code challenges, send limits and sessions."""

import datetime

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
    def counts(cls, keys, recent_since, since):
        """{key: (events after recent_since, events after since)} for keys, in one query."""
        recent = fn.SUM(Case(None, [(cls.at > recent_since, 1)], 0))
        rows = (
            cls.select(cls.key, recent, fn.COUNT(cls.id))
            .where(cls.key.in_(list(keys)) & (cls.at > since))
            .group_by(cls.key)
            .tuples()
        )
        found = {key: (int(recent_count or 0), int(count)) for key, recent_count, count in rows}
        return {key: found.get(key, (0, 0)) for key in keys}

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
