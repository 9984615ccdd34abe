"""Factory helpers that build valid rows with sensible defaults."""

import itertools
import random

from models.accounts import Role
from models.accounts import Staff
from models.citizens import Citizen
from models.places import Ward
from models.units import HealthUnit
from models.units import UnitKind
from models.validation import new_health_code

QUANG_NINH = 22
_counter = itertools.count(1)
_rng = random.Random(7)
PASSWORD = "correct horse battery"


def wards_of(province_code=QUANG_NINH, n=None):
    """Ward codes of a province, in code order."""
    codes = [w.code for w in Ward.select(Ward.code).where(Ward.province == province_code).order_by(Ward.code)]
    return codes if n is None else codes[:n]


def make_unit(kind=UnitKind.COMMUNE_STATION, wards=(), parent=None, code=None, province=QUANG_NINH, **fields):
    n = next(_counter)
    unit = HealthUnit.create(
        code=code or f"U{n:04d}",
        name=fields.pop("name", f"Unit {n}"),
        kind=kind,
        parent=parent,
        province=province,
        email=fields.pop("email", f"unit{n}@example.org"),
        **fields,
    )
    unit.set_wards(wards)
    return unit


def make_staff(unit, role=Role.UNIT_STAFF, username=None, password=PASSWORD, must_change=False, **fields):
    n = next(_counter)
    account = Staff(
        username=username or f"user{n}", full_name=fields.pop("full_name", f"Staff {n}"), unit=unit, role=role, **fields
    )
    account.set_password(password, one_time=must_change)
    account.save(force_insert=True)
    return account


def make_citizen(ward, full_name="Nguyễn Văn An", **fields):
    ward_code = getattr(ward, "code", ward)
    fields.setdefault("health_code", new_health_code(QUANG_NINH, _rng))
    citizen = Citizen(full_name=full_name, ward=ward_code, **fields)
    citizen.save(force_insert=True)
    return citizen
