"""Citizens, households and family relations (the paper form of seed 002)."""

import functools
import secrets

from flask_babel import lazy_gettext as _l
from peewee import SQL
from peewee import CharField
from peewee import DateField
from peewee import ForeignKeyField
from peewee import IntegrityError
from peewee import NodeList
from peewee import TextField
from peewee import fn

from models.base import BaseModel
from models.base import db
from models.base import for_database
from models.base import is_postgres
from models.base import quoted
from models.places import Ward
from models.text import fold
from models.text import fold_name
from models.text import search_terms
from models.validation import FieldError
from models.validation import new_health_code
from models.validation import normalize_email
from models.validation import normalize_gender
from models.validation import normalize_health_code
from models.validation import normalize_insurance_number
from models.validation import normalize_national_id
from models.validation import normalize_phone
from models.validation import validate_birth_date

GENDERS = (("M", _l("Male")), ("F", _l("Female")))
RELATIONS_TO_HEAD = (
    ("head", _l("Household head")),
    ("spouse", _l("Spouse")),
    ("child", _l("Child")),
    ("parent", _l("Parent")),
    ("grandparent", _l("Grandparent")),
    ("grandchild", _l("Grandchild")),
    ("sibling", _l("Sibling")),
    ("other", _l("Other")),
)
FAMILY_KINDS = (
    ("father", _l("Father")),
    ("mother", _l("Mother")),
    ("spouse", _l("Spouse")),
    ("child", _l("Child")),
    ("guardian", _l("Guardian")),
)

# A citizen's fields that staff fill in, in the order of the paper form (seed 002).
FORM_FIELDS = (
    "full_name",
    "date_of_birth",
    "gender",
    "phone",
    "email",
    "national_id",
    "national_id_issued_on",
    "national_id_issued_by",
    "old_national_id",
    "insurance_number",
    "health_code",
    "occupation",
    "ethnicity",
    "ward",
    "permanent_address",
    "temporary_address",
    "household",
    "relation_to_head",
)


class Household(BaseModel):
    """A household book (sổ hộ khẩu) and the address it is registered at."""

    book_number = CharField(max_length=32, unique=True)
    ward = ForeignKeyField(Ward, backref="households", on_delete="RESTRICT")
    address = CharField(max_length=255, null=True)

    def __str__(self):
        return self.book_number

    def heads(self):
        return self.members.where(Citizen.relation_to_head == "head")

    @classmethod
    def in_scope(cls, scope, query=None):
        """Households registered in the scope's communes."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.ward.in_(sorted(scope.ward_codes)))


class Citizen(BaseModel):
    """A resident with every field of the data-collection form."""

    full_name = CharField(max_length=255)
    date_of_birth = DateField(null=True)
    gender = CharField(max_length=1, null=True, choices=GENDERS)
    occupation = CharField(max_length=255, null=True)
    ethnicity = CharField(max_length=64, null=True)
    phone = CharField(max_length=10, null=True, index=True)
    email = CharField(max_length=255, null=True)
    national_id = CharField(max_length=12, null=True, index=True)
    national_id_issued_on = DateField(null=True)
    national_id_issued_by = CharField(max_length=255, null=True)
    old_national_id = CharField(max_length=9, null=True)
    insurance_number = CharField(max_length=15, null=True)
    # Null only for records loaded from earlier systems without one; saving issues a code.
    health_code = CharField(max_length=20, unique=True, null=True)
    ward = ForeignKeyField(Ward, backref="citizens", on_delete="RESTRICT", index=False)  # (ward, id) below
    permanent_address = CharField(max_length=255, null=True)
    temporary_address = CharField(max_length=255, null=True)
    household = ForeignKeyField(Household, null=True, backref="members", on_delete="RESTRICT")
    relation_to_head = CharField(max_length=16, null=True, choices=RELATIONS_TO_HEAD)
    search_text = TextField(default="")

    class Meta:
        indexes = ((("ward", "id"), False),)

    def __str__(self):
        return f"{self.full_name} ({self.health_code})"

    # Invariants
    def clean(self):
        """Normalise every field and raise FieldError naming the first bad one."""
        self.full_name = " ".join((self.full_name or "").split())
        if not self.full_name:
            raise FieldError("full_name", _l("The full name is required."))
        self.date_of_birth = validate_birth_date(self.date_of_birth)
        self.gender = normalize_gender(self.gender)
        self.phone = normalize_phone(self.phone)
        self.email = normalize_email(self.email)
        self.national_id = normalize_national_id(self.national_id, self.date_of_birth, self.gender)
        self.old_national_id = normalize_national_id(self.old_national_id, field="old_national_id")
        if self.old_national_id and len(self.old_national_id) != 9:
            raise FieldError("old_national_id", _l("The old ID number must be a 9-digit CMND."))
        self.insurance_number = normalize_insurance_number(self.insurance_number)
        self.health_code = normalize_health_code(self.health_code)
        if self.ward_id is None:
            raise FieldError("ward", _l("The commune or ward of residence is required."))
        self.search_text = self.build_search_text()

    def build_search_text(self):
        """Folded words that the diacritic-insensitive search matches against."""
        # Names repeat across a province: their folding is remembered (fold_name).
        parts = [fold_name(self.full_name), fold(self.permanent_address), fold(self.temporary_address)]
        codes = [self.health_code, self.national_id, self.old_national_id, self.insurance_number, self.phone]
        if self.phone:
            codes.append(self.phone[1:])  # typed without the leading 0
        # Folded together: fold() separates words by one space, so this is each code folded, joined.
        parts.append(fold(" ".join(filter(None, codes))))
        return " ".join(filter(None, parts))

    def save(self, *args, **kwargs):
        self.clean()
        if not self.health_code:
            return self._save_with_new_health_code(*args, **kwargs)
        return super().save(*args, **kwargs)

    def _save_with_new_health_code(self, *args, rng=None, **kwargs):
        rng = rng or secrets.SystemRandom()
        province_code = Ward.get_by_id(self.ward_id).province_id
        for _attempt in range(5):
            self.health_code = new_health_code(province_code, rng)
            self.search_text = self.build_search_text()
            try:
                with db.atomic():
                    return super().save(*args, **kwargs)
            except IntegrityError:
                if Citizen.select().where(Citizen.health_code == self.health_code).exists():
                    continue
                raise
        raise FieldError("health_code", _l("Could not issue a unique health code; please try again."))

    # Queries
    @classmethod
    def in_scope(cls, scope, query=None):
        """Citizens whose residence commune is in the scope."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.ward.in_(sorted(scope.ward_codes)))

    @classmethod
    def matching(cls, text, query=None):
        """Citizens whose name, address or codes start with every word of text, ignoring diacritics."""
        query = cls.select() if query is None else query
        terms = [_phone_term(t) for t in search_terms(text)]
        if not terms:
            return query
        if is_postgres():
            # Each word starts a word of the name or address (the GIN index of migration 0009) or a code.
            words = cls._search_words()
            for term in terms:
                query = query.where(
                    NodeList((words, SQL("@@"), fn.to_tsquery("simple", f"{term}:*"))) | cls._code_starting(term)
                )
            return query
        fts_query = " ".join(f'"{t}"*' for t in terms)
        subquery = SQL(f"(SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?)", (fts_query,))
        return query.where(cls.id.in_(subquery))

    @classmethod
    def _search_words(cls):
        """The search text's lexemes less the citizen's own codes: migration 0009's WORDS_TSVECTOR, as a query node."""
        codes = [
            fn.lower(cls.health_code),
            cls.national_id,
            cls.old_national_id,
            fn.lower(cls.insurance_number),
            cls.phone,
            fn.substr(cls.phone, 2),
        ]
        array = NodeList((SQL("ARRAY["), NodeList(codes, glue=", "), SQL("]::text[]")), glue="")
        return fn.ts_delete(fn.to_tsvector("simple", cls.search_text), fn.array_remove(array, SQL("NULL")))

    @classmethod
    def _code_starting(cls, term):
        """One of the citizen's codes starts with term (lower case, as the search text holds them)."""
        prefix = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return (
            (fn.lower(cls.health_code) % prefix)
            | (cls.national_id % prefix)
            | (cls.old_national_id % prefix)
            | (fn.lower(cls.insurance_number) % prefix)
            | (cls.phone % prefix)
            | (cls.phone % ("0" + prefix))  # the phone's lexeme without its leading 0
        )

    @classmethod
    def id_matching(cls, health_code, phone):
        """The id of the citizen with this health code (or a merged record's old one) and this phone on file, or None."""
        row = db.execute_sql(for_database(cls.id_matching_sql()), (health_code, phone, health_code, phone)).fetchone()
        return row[0] if row else None

    @staticmethod
    @functools.cache
    def id_matching_sql():
        """id_matching's statement, with ? for the health code, the phone, the health code, the phone.

        UNION ALL, not OR: each side is answered by its own unique index. The lookup's write
        (services.code_requests) runs it inside its own statement.
        """
        from models.duplicates import CitizenAlias

        c, a = Citizen, CitizenAlias
        return (
            f"SELECT c.{quoted(c, c.id)} FROM {quoted(c)} c "
            f"WHERE c.{quoted(c, c.health_code)} = ? AND c.{quoted(c, c.phone)} = ? UNION ALL "
            f"SELECT c.{quoted(c, c.id)} FROM {quoted(c)} c "
            f"JOIN {quoted(a)} a ON a.{quoted(a, a.citizen)} = c.{quoted(c, c.id)} "
            f"WHERE a.{quoted(a, a.kind)} = 'health_code' AND a.{quoted(a, a.value)} = ? AND c.{quoted(c, c.phone)} = ? "
            "LIMIT 1"
        )

    @classmethod
    def find_by_health_code(cls, health_code):
        """The citizen with this health code, or the one a record with this old code was merged into; or None."""
        from models.duplicates import CitizenAlias

        if not health_code:
            return None
        found = cls.get_or_none(cls.health_code == health_code)
        if found is None:
            alias = CitizenAlias.select(CitizenAlias.citizen).where(
                (CitizenAlias.kind == "health_code") & (CitizenAlias.value == health_code)
            )
            found = cls.get_or_none(cls.id.in_(alias))
        return found

    def family(self):
        """(kind, relative) pairs in both directions."""
        outgoing = [(r.kind, r.relative) for r in self.relations.join(Citizen, on=FamilyRelation.relative)]
        incoming = [
            (INVERSE_KIND.get(r.kind, r.kind), r.citizen)
            for r in FamilyRelation.select().where(FamilyRelation.relative == self)
        ]
        return outgoing + incoming


FTS_TABLE = "citizen_fts"
FTS_DEFAULT_AUTOMERGE = 4  # SQLite FTS5's default: segments of a level merged once 4 have accumulated


def set_search_automerge(segments):
    """Set how many segments of a level SQLite's search index gathers before merging them (0: never)."""
    db.execute_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('automerge', ?)", (int(segments),))


FAMILY_LABELS = {**dict(FAMILY_KINDS), "parent": _l("Parent"), "ward": _l("Person under guardianship")}
INVERSE_KIND = {"father": "child", "mother": "child", "child": "parent", "spouse": "spouse", "guardian": "ward"}


def _phone_term(term):
    """84912345678 and 0912345678 are one number: search without the prefix."""
    if term.isdigit() and len(term) == 11 and term.startswith("84"):
        return term[2:]
    if term.isdigit() and len(term) == 10 and term.startswith("0"):
        return term[1:]
    return term


class FamilyRelation(BaseModel):
    """The relative is the citizen's father, mother, spouse, child or guardian."""

    citizen = ForeignKeyField(Citizen, backref="relations", on_delete="RESTRICT", index=False)  # unique below
    relative = ForeignKeyField(Citizen, backref="related_to", on_delete="RESTRICT")
    kind = CharField(max_length=16, choices=FAMILY_KINDS)

    class Meta:
        indexes = ((("citizen", "relative", "kind"), True),)

    @classmethod
    def in_scope(cls, scope, query=None):
        """Relations of citizens inside the scope."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        # A subquery, not a join: the caller's query may already join Citizen.
        return query.where(cls.citizen.in_(Citizen.in_scope(scope, Citizen.select(Citizen.id))))

    def clean(self):
        if self.citizen_id == self.relative_id:
            raise FieldError("relative", _l("A citizen cannot be their own relative."))

    def save(self, *args, **kwargs):
        self.clean()
        return super().save(*args, **kwargs)
