"""Possible duplicate persons queued for review, and the identifiers a merged record leaves behind."""

from flask_babel import lazy_gettext as _l
from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import TextField

from models.accounts import Staff
from models.base import BaseModel
from models.base import any_of
from models.base import db
from models.base import utcnow
from models.citizens import Citizen
from models.validation import FieldError

REASONS = (
    ("national_id", _l("Same ID number")),
    ("name_dob_phone", _l("Same name, date of birth and phone")),
    ("name_dob_ward", _l("Same name, date of birth and commune")),
    ("alias", _l("Code or ID number of a merged record")),
    ("manual", _l("Chosen by staff")),
)
OPEN, MERGED, NOT_DUPLICATE = "open", "merged", "not_duplicate"
STATUSES = ((OPEN, _l("To review")), (MERGED, _l("Merged")), (NOT_DUPLICATE, _l("Not a duplicate")))
ALIAS_KINDS = (
    ("health_code", _l("Personal health code")),
    ("national_id", _l("ID number (CCCD/CMND)")),
    ("insurance_number", _l("Health insurance number")),
)


class DuplicateCandidate(BaseModel):
    """Two citizen records that may be one person: citizen_a_id < citizen_b_id.

    Plain ids, not foreign keys: the decision outlives the merged record, and a pair decided
    "not a duplicate" must be remembered whatever happens to either record later.
    """

    citizen_a_id = IntegerField()
    citizen_b_id = IntegerField(index=True)
    reason = CharField(max_length=16, choices=REASONS)
    found_at = DateTimeField(default=utcnow)
    status = CharField(max_length=16, choices=STATUSES, default=OPEN, index=True)
    survivor_id = IntegerField(null=True)  # after a merge: the record that stayed
    decided_by = ForeignKeyField(Staff, null=True, backref="duplicate_decisions", on_delete="RESTRICT")
    decided_at = DateTimeField(null=True)
    note = TextField(null=True)

    class Meta:
        # Unique among pairs not merged: a merged record's id can come back on SQLite (it reuses the
        # highest id once deleted), and the new person must still be comparable. See m0008.
        indexes = ((("citizen_a_id", "citizen_b_id"), False),)

    @classmethod
    def live(cls):
        """Pairs still open or decided apart (a merged pair speaks of a record that is gone)."""
        return cls.select().where(cls.status != MERGED)

    def __str__(self):
        return f"#{self.id}"

    @staticmethod
    def pair(first_id, second_id):
        """The two ids in the stored order."""
        return (first_id, second_id) if first_id < second_id else (second_id, first_id)

    @classmethod
    def in_scope(cls, scope, query=None):
        """Pairs whose two citizens are both in the scope (a merged pair: its survivor)."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        ids = Citizen.in_scope(scope, Citizen.select(Citizen.id))
        both = cls.citizen_a_id.in_(ids) & cls.citizen_b_id.in_(ids)
        return query.where(both | ((cls.status == MERGED) & cls.survivor_id.in_(ids)))

    @classmethod
    def open_for(cls, citizen_id):
        return cls.select().where(
            (cls.status == OPEN) & ((cls.citizen_a_id == citizen_id) | (cls.citizen_b_id == citizen_id))
        )

    def other_id(self, citizen_id):
        return self.citizen_b_id if citizen_id == self.citizen_a_id else self.citizen_a_id

    def mark_not_duplicate(self, by, note):
        """Remember that these two are different people; the pair is never queued again."""
        if self.status != OPEN:
            raise FieldError("status", _l("This pair has already been decided."))
        note = (note or "").strip()[:1000]
        if not note:
            raise FieldError("note", _l("Say why they are different people."))
        with db.atomic():
            self.status, self.decided_by, self.decided_at, self.note = NOT_DUPLICATE, by, utcnow(), note
            self.save()


class CitizenAlias(BaseModel):
    """An identifier of a record merged into this citizen: an old health code still finds the person."""

    citizen = ForeignKeyField(Citizen, backref="aliases", on_delete="RESTRICT")
    kind = CharField(max_length=16, choices=ALIAS_KINDS)
    value = CharField(max_length=20)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "value"), True),)

    def __str__(self):
        return f"{self.kind}:{self.value}"

    @classmethod
    def any_recorded(cls):
        """Whether any record was ever merged away: until then, batches of codes need not be looked up."""
        return cls.select(cls.id).limit(1).exists()

    @classmethod
    def owners(cls, kind, values):
        """{value: id of the citizen a record with this old identifier was merged into}, in one query."""
        values = sorted(set(values))
        if not values or not cls.any_recorded():
            return {}
        query = cls.select(cls.value, cls.citizen).where((cls.kind == kind) & any_of(cls.value, values))
        return dict(query.tuples())

    @classmethod
    def in_scope(cls, scope, query=None):
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.citizen.in_(Citizen.in_scope(scope, Citizen.select(Citizen.id))))
