"""Staff accounts, roles, permissions and the jurisdiction scope they give."""

import datetime

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from peewee import BooleanField
from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegerField

from models.base import BaseModel
from models.base import utcnow
from models.units import HealthUnit
from models.validation import FieldError
from services import passwords

MAX_FAILED_SIGN_INS = 5
LOCKOUT = datetime.timedelta(minutes=15)


class Role:
    SYSTEM_ADMIN = "system_admin"
    DEPARTMENT_LEADER = "department_leader"
    CDC_STAFF = "cdc_staff"
    UNIT_STAFF = "unit_staff"
    DATA_CLERK = "data_clerk"

    ALL = (SYSTEM_ADMIN, DEPARTMENT_LEADER, CDC_STAFF, UNIT_STAFF, DATA_CLERK)
    LABELS = {
        SYSTEM_ADMIN: _l("System administrator"),
        DEPARTMENT_LEADER: _l("Department leader"),
        CDC_STAFF: _l("CDC staff"),
        UNIT_STAFF: _l("Unit staff"),
        DATA_CLERK: _l("Data clerk"),
    }
    # Roles that see every citizen in the database; the others see their unit's jurisdiction.
    SEE_EVERYTHING = (SYSTEM_ADMIN, DEPARTMENT_LEADER)


# What each role may do to each kind of data. Scope (which citizens) is applied separately.
PERMISSIONS = {
    Role.SYSTEM_ADMIN: {
        "citizen": {"view", "create", "edit", "delete", "export"},
        "record": {"view", "create", "edit", "delete", "export"},
        "unit": {"view", "create", "edit", "delete", "export"},
        "staff": {"view", "create", "edit", "export"},
        "vaccine": {"view", "create", "edit", "delete"},
        "audit": {"view", "export"},
        "report": {"view", "export", "create", "edit", "delete"},
        "risk_case": {"view", "edit", "export"},
        "checklist": {"view", "create", "edit", "delete"},
        "api_key": {"view", "create", "edit"},
    },
    Role.DEPARTMENT_LEADER: {
        "citizen": {"view", "export"},
        "record": {"view", "export"},
        "unit": {"view", "export"},
        "staff": {"view"},
        "vaccine": {"view"},
        "audit": {"view", "export"},
        "report": {"view", "export", "create", "edit", "delete"},
        "risk_case": {"view", "export"},
        "checklist": {"view"},
        "api_key": {"view"},
    },
    Role.CDC_STAFF: {
        "citizen": {"view", "create", "edit", "export"},
        "record": {"view", "create", "edit", "delete", "export"},
        "unit": {"view"},
        "vaccine": {"view", "create", "edit"},
        "report": {"view", "export"},
        "risk_case": {"view", "edit", "export"},
        "checklist": {"view", "create", "edit"},
    },
    Role.UNIT_STAFF: {
        "citizen": {"view", "create", "edit", "export"},
        "record": {"view", "create", "edit", "delete", "export"},
        "unit": {"view"},
        "vaccine": {"view"},
        "report": {"view", "export"},
        "risk_case": {"view", "edit", "export"},
        "checklist": {"view"},
    },
    Role.DATA_CLERK: {
        "citizen": {"view", "create", "edit"},
        "record": {"view", "create", "edit"},
        "unit": {"view"},
        "vaccine": {"view"},
    },
}


class Scope:
    """The set of communes whose citizens a user may see; ward_codes None means all."""

    def __init__(self, ward_codes=None):
        self.ward_codes = None if ward_codes is None else frozenset(ward_codes)

    @classmethod
    def everything(cls):
        return cls(None)

    @property
    def is_everything(self):
        return self.ward_codes is None

    def covers(self, ward_code):
        """True when a citizen living in this ward is within the scope."""
        if self.ward_codes is None:
            return True
        return ward_code is not None and int(ward_code) in self.ward_codes

    def __repr__(self):
        return "Scope(all)" if self.ward_codes is None else f"Scope({len(self.ward_codes)} wards)"


class Staff(UserMixin, BaseModel):
    """One account per person, attached to one health unit."""

    username = CharField(unique=True, max_length=64)
    full_name = CharField(max_length=255)
    unit = ForeignKeyField(HealthUnit, backref="staff", on_delete="RESTRICT")
    role = CharField(max_length=32, choices=list(Role.LABELS.items()))
    email = CharField(null=True, max_length=255)
    password_hash = CharField(max_length=255, default="")
    must_change_password = BooleanField(default=True)
    failed_sign_ins = IntegerField(default=0)
    locked_until = DateTimeField(null=True)
    active = BooleanField(default=True)
    last_sign_in_at = DateTimeField(null=True)
    # Changes on every password change, so old sessions stop working (Flask-Login id).
    session_nonce = CharField(max_length=32, default="")

    def __str__(self):
        return f"{self.full_name} ({self.username})"

    # Flask-Login
    @property
    def is_active(self):
        return self.active

    def get_id(self):
        return f"{self.id}:{self.session_nonce}"

    @classmethod
    def from_session_id(cls, value):
        """The account a session id names, or None when the id is stale."""
        account_id, _, nonce = str(value).partition(":")
        if not account_id.isdigit():
            return None
        account = cls.get_or_none(cls.id == int(account_id))
        if account is None or account.session_nonce != nonce or not account.active:
            return None
        return account

    # Permissions and scope
    def can(self, action, resource):
        """True when the role allows this action on this kind of data."""
        return action in PERMISSIONS.get(self.role, {}).get(resource, ())

    def scope(self):
        """Which citizens this account may see, by residence commune."""
        if self.role in Role.SEE_EVERYTHING:
            return Scope.everything()
        return Scope(self.unit.jurisdiction())

    # Passwords and sign-in
    def set_password(self, password, one_time=False):
        """Store a new password; a one-time password must be changed at next sign-in."""
        if len(password) < passwords.MIN_PASSWORD_LENGTH:
            raise FieldError(
                "password",
                _l("The password must have at least %(n)s characters.", n=passwords.MIN_PASSWORD_LENGTH),
            )
        if password.lower() in {self.username.lower(), (self.full_name or "").lower()}:
            raise FieldError("password", _l("The password must not be your user name or your name."))
        self.password_hash = passwords.hash_password(password)
        self.must_change_password = one_time
        self.session_nonce = passwords.one_time_password(16)

    def issue_one_time_password(self):
        """Set and return a fresh one-time password."""
        password = passwords.one_time_password()
        self.set_password(password, one_time=True)
        return password

    def is_locked(self, now=None):
        now = now or utcnow()
        return self.locked_until is not None and self.locked_until > now

    def record_failed_sign_in(self, now=None):
        """Count a failed sign-in; lock the account after too many."""
        now = now or utcnow()
        self.failed_sign_ins += 1
        if self.failed_sign_ins >= MAX_FAILED_SIGN_INS:
            self.locked_until = now + LOCKOUT
            self.failed_sign_ins = 0
        self.save()

    def record_sign_in(self, now=None):
        self.failed_sign_ins = 0
        self.locked_until = None
        self.last_sign_in_at = now or utcnow()
        self.save()

    @classmethod
    def authenticate(cls, username, password, now=None):
        """Return (account, outcome) where outcome is ok, locked, inactive or invalid."""
        account = cls.get_or_none(cls.username == (username or "").strip().lower())
        if account is None:
            passwords.verify_password("", password)
            return None, "invalid"
        if account.is_locked(now):
            return account, "locked"
        if not passwords.verify_password(account.password_hash, password):
            account.record_failed_sign_in(now)
            return account, "locked" if account.is_locked(now) else "invalid"
        if not account.active:
            return account, "inactive"
        if passwords.needs_rehash(account.password_hash):
            account.password_hash = passwords.hash_password(password)
        account.record_sign_in(now)
        return account, "ok"
