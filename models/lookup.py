"""Citizens' self-service access: one-time code challenges, send limits and sessions."""

import datetime

from peewee import BooleanField
from peewee import CharField
from peewee import DateTimeField
from peewee import IntegerField

from models.base import BaseModel
from models.base import db
from models.base import for_database
from models.base import quoted


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
        today, this_hour = db.execute_sql(for_database(cls.COUNT_NEWEST), (recent_since, key, since, cap)).fetchone()
        return int(this_hour), int(today)

    @classmethod
    def forget_before(cls, moment):
        """Drop events too old to count against any limit."""
        return cls.delete().where(cls.at < moment).execute()


# counts_within's statement, with ? for recent_since, key, since, cap; it answers (since, recent_since)
# counts. The lookup's write (services.code_requests) runs it inside its own statement.
RateEvent.COUNT_NEWEST = (
    'SELECT COUNT(*), COALESCE(SUM(CASE WHEN "at" > ? THEN 1 ELSE 0 END), 0) FROM '
    f'(SELECT "at" FROM {quoted(RateEvent)} WHERE "key" = ? AND "at" > ? ORDER BY "at" DESC LIMIT ?) AS newest'
)


class CitizenSession(BaseModel):
    """A citizen's short session after a verified code; the cookie holds only its token."""

    token = CharField(max_length=64, unique=True)
    citizen_id = IntegerField()
    started_at = DateTimeField()
    ended_at = DateTimeField(null=True)

    LIFETIME = datetime.timedelta(minutes=15)

    def is_valid(self, now):
        return self.ended_at is None and now < self.started_at + self.LIFETIME
