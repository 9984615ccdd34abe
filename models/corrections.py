"""A citizen asks for a correction of their record; the commune's staff accept or reject it."""

from flask_babel import lazy_gettext as _l
from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import TextField

from models.accounts import Staff
from models.base import BaseModel
from models.base import db
from models.base import utcnow
from models.citizens import Citizen
from models.validation import FieldError

# Fields a citizen may ask to correct; identifiers that gate access (health code) are not among them.
CORRECTABLE_FIELDS = (
    "full_name",
    "date_of_birth",
    "gender",
    "phone",
    "email",
    "national_id",
    "insurance_number",
    "occupation",
    "ethnicity",
    "permanent_address",
    "temporary_address",
)
STATUSES = (("pending", _l("Pending")), ("accepted", _l("Accepted")), ("rejected", _l("Rejected")))


class CorrectionRequest(BaseModel):
    citizen = ForeignKeyField(Citizen, backref="correction_requests", on_delete="RESTRICT")
    field = CharField(max_length=32)
    proposed_value = CharField(max_length=255)
    note = TextField(null=True)
    status = CharField(max_length=16, choices=STATUSES, default="pending", index=True)
    reason = TextField(null=True)
    decided_by = ForeignKeyField(Staff, null=True, backref="decided_corrections", on_delete="RESTRICT")
    decided_at = DateTimeField(null=True)

    def __str__(self):
        return f"#{self.id} {self.field}"

    @classmethod
    def in_scope(cls, scope, query=None):
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.citizen.in_(Citizen.in_scope(scope, Citizen.select(Citizen.id))))

    def clean(self):
        if self.field not in CORRECTABLE_FIELDS:
            raise FieldError("field", _l("Choose which detail should be corrected."))
        self.proposed_value = " ".join((self.proposed_value or "").split())
        if not self.proposed_value:
            raise FieldError("proposed_value", _l("Type the correct value."))
        if len(self.proposed_value) > 255:
            raise FieldError("proposed_value", _l("The value is too long."))
        self.note = (self.note or "").strip()[:1000] or None

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)

    def accept(self, by):
        """Apply the proposed value to the citizen; return {field: [old, new]}; FieldError leaves everything as it was."""
        if self.status != "pending":
            raise FieldError("status", _l("This request has already been decided."))
        with db.atomic():
            citizen = Citizen.get_by_id(self.citizen_id)
            old = getattr(citizen, self.field)
            setattr(citizen, self.field, self.proposed_value)
            citizen.save()
            self.status, self.decided_by, self.decided_at = "accepted", by, utcnow()
            self.save()
        return {self.field: [old, getattr(citizen, self.field)]}

    def reject(self, by, reason):
        """Refuse the request with a reason the citizen will read."""
        if self.status != "pending":
            raise FieldError("status", _l("This request has already been decided."))
        reason = (reason or "").strip()
        if not reason:
            raise FieldError("reason", _l("Give the citizen a reason."))
        self.status, self.reason, self.decided_by, self.decided_at = "rejected", reason[:1000], by, utcnow()
        self.save()
