"""The append-only audit log of every read and change of personal data."""

import json

from peewee import JOIN
from peewee import CharField
from peewee import DateTimeField
from peewee import IntegerField
from peewee import TextField

from models.base import BaseModel
from models.base import utcnow


class Action:
    VIEW = "view"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    FAILED_SIGN_IN = "failed_sign_in"
    PASSWORD_CHANGE = "password_change"
    LOOKUP = "lookup"

    ALL = (VIEW, SEARCH, CREATE, UPDATE, DELETE, EXPORT, SIGN_IN, SIGN_OUT, FAILED_SIGN_IN, PASSWORD_CHANGE, LOOKUP)
    CHANGES = (CREATE, UPDATE, DELETE)


class AppendOnlyError(Exception):
    """Audit events are never changed or removed."""


class AuditEvent(BaseModel):
    """Who did what to which record, when and from where."""

    at = DateTimeField(default=utcnow, index=True)
    actor_id = IntegerField(null=True, index=True)
    actor = CharField(max_length=64, null=True)
    role = CharField(max_length=32, null=True)
    unit_code = CharField(max_length=32, null=True)
    action = CharField(max_length=32, choices=[(a, a) for a in Action.ALL])
    object_type = CharField(max_length=32, null=True)
    object_id = CharField(max_length=64, null=True)
    # Not a foreign key: the trail outlives the citizen record it speaks of.
    citizen_id = IntegerField(null=True)  # leads the (citizen_id, at) index of Meta
    detail = TextField(default="{}")
    address = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("citizen_id", "at"), False),)

    def save(self, *args, **kwargs):
        if self.id is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("audit events cannot be changed")
        return super().save(*args, **kwargs)

    def delete_instance(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")

    @property
    def details(self):
        return json.loads(self.detail or "{}")

    @classmethod
    def record(cls, action, actor=None, object_type=None, object_id=None, citizen_id=None, address=None, **detail):
        """Append one event; actor is a Staff account or None for the public."""
        return cls.create(
            action=action,
            actor_id=getattr(actor, "id", None),
            actor=getattr(actor, "username", None),
            role=getattr(actor, "role", None),
            unit_code=actor.unit.code if actor is not None and getattr(actor, "unit_id", None) else None,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            citizen_id=citizen_id,
            detail=cls.encode_detail(detail),
            address=address,
        )

    @staticmethod
    def encode_detail(detail):
        """The detail column's text for a dict of details."""
        return json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True)

    @classmethod
    def staff_views_of(cls, citizen_id, limit=50, with_unit_names=False):
        """When health-service staff read one citizen's data, newest first.

        with_unit_names: each event also carries unit_name, the name of the actor's unit then.
        """
        columns = [cls.id, cls.at, cls.actor, cls.role, cls.unit_code]
        query = cls.select(*columns)
        if with_unit_names:
            from models.units import HealthUnit

            query = cls.select(*columns, HealthUnit.name.alias("unit_name")).join(
                HealthUnit, JOIN.LEFT_OUTER, on=(HealthUnit.code == cls.unit_code), attr="unit"
            )
        return (
            query.where((cls.citizen_id == citizen_id) & (cls.action == Action.VIEW) & cls.actor_id.is_null(False))
            .order_by(cls.at.desc(), cls.id.desc())
            .limit(limit)
            .objects()
        )

    @classmethod
    def history_of(cls, citizen_id):
        """Changes to one citizen's data, newest first."""
        return (
            cls.select()
            .where((cls.citizen_id == citizen_id) & cls.action.in_(Action.CHANGES))
            .order_by(cls.at.desc(), cls.id.desc())
        )
