"""The hospital feed: facilities' API keys and the encounters that named no known citizen."""

import hashlib
import json

from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import TextField

from models.accounts import Role
from models.accounts import Staff
from models.base import BaseModel
from models.base import utcnow
from models.citizens import Citizen
from models.units import HealthUnit
from models.units import UnitKind

# Kinds of unit that send encounters: hospitals and (regional) health centres.
FEED_UNIT_KINDS = (UnitKind.HOSPITAL, UnitKind.REGIONAL_CENTRE)
PREFIX_LENGTH = 8


def hash_secret(secret):
    """The sha256 hex digest stored in place of a key's secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """A facility's key for the API; only the hash of its secret is kept."""

    facility = ForeignKeyField(HealthUnit, backref="api_keys", on_delete="RESTRICT")
    name = CharField(max_length=255)
    prefix = CharField(max_length=PREFIX_LENGTH)
    key_hash = CharField(max_length=64, unique=True)
    created_by = ForeignKeyField(Staff, null=True, backref="issued_api_keys", on_delete="SET NULL")
    revoked_at = DateTimeField(null=True)
    last_used_at = DateTimeField(null=True)

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    @classmethod
    def active_by_secret(cls, secret):
        """The unrevoked key whose secret this is, or None (looked up by hash: no timing leak)."""
        return (
            cls.select(cls, HealthUnit)
            .join(HealthUnit)
            .where((cls.key_hash == hash_secret(secret)) & cls.revoked_at.is_null())
            .first()
        )


class UnmatchedEncounter(BaseModel):
    """An encounter sent for someone the portal does not know, kept until staff name the citizen."""

    facility = ForeignKeyField(HealthUnit, backref="unmatched_encounters", on_delete="RESTRICT", index=False)
    visit_id = CharField(max_length=64)
    payload = TextField()  # the item as sent, JSON
    # The commune the facility gave for the person, if any: it decides who may resolve the row.
    ward_code = IntegerField(null=True, index=True)
    resolved_at = DateTimeField(null=True)
    resolved_citizen = ForeignKeyField(Citizen, null=True, backref="resolved_encounters", on_delete="RESTRICT")
    resolved_by = ForeignKeyField(Staff, null=True, backref="resolved_encounters", on_delete="SET NULL")

    class Meta:
        indexes = ((("facility", "visit_id"), True),)

    def __str__(self):
        return f"{self.visit_id}"

    @property
    def item(self):
        """The encounter as the facility sent it."""
        return json.loads(self.payload or "{}")

    @classmethod
    def in_scope(cls, scope, query=None, role=None):
        """Rows whose commune is in scope; rows without a commune only for province-wide roles and the CDC."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        in_wards = cls.ward_code.in_(sorted(scope.ward_codes))
        if role == Role.CDC_STAFF:
            return query.where(in_wards | cls.ward_code.is_null())
        return query.where(in_wards)

    @classmethod
    def pending(cls, query=None):
        query = cls.select() if query is None else query
        return query.where(cls.resolved_at.is_null())

    def resolve(self, citizen, by, now=None):
        """Mark the row resolved to citizen (the caller writes the encounter)."""
        self.resolved_at = now or utcnow()
        self.resolved_citizen = citizen
        self.resolved_by = by
        self.save()
