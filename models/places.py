"""Administrative units after 1 July 2025: provinces and communes/wards, no districts."""

import vietnam_provinces
from peewee import CharField
from peewee import ForeignKeyField
from peewee import IntegerField

from models.base import BaseModel
from models.base import db
from models.text import fold


class Province(BaseModel):
    """One of the 34 provinces and centrally-run cities."""

    code = IntegerField(primary_key=True)
    name = CharField()
    division_type = CharField()

    def __str__(self):
        return self.name


class Ward(BaseModel):
    """A commune, ward or special zone, with its official code."""

    code = IntegerField(primary_key=True)
    name = CharField()
    division_type = CharField()
    province = ForeignKeyField(Province, backref="wards", on_delete="RESTRICT")
    name_folded = CharField(index=True)

    def __str__(self):
        return self.name

    @classmethod
    def in_scope(cls, scope, query=None):
        """Wards inside the scope."""
        query = cls.select() if query is None else query
        if scope.is_everything:
            return query
        return query.where(cls.code.in_(sorted(scope.ward_codes)))

    @classmethod
    def of_province(cls, province_code):
        """Wards of one province, by name."""
        return cls.select().where(cls.province == province_code).order_by(cls.name)


def load_administrative_units():
    """Insert or refresh provinces and wards from the vietnam-provinces package."""
    provinces = [
        {"code": int(p.code), "name": p.name, "division_type": p.division_type.value}
        for p in vietnam_provinces.Province.iter_all()
    ]
    wards = [
        {
            "code": int(w.code),
            "name": w.name,
            "division_type": w.division_type.value,
            "province": int(w.province_code),
            "name_folded": fold(w.name),
        }
        for w in vietnam_provinces.Ward.iter_all()
    ]
    with db.atomic():
        for row in provinces:
            Province.insert(**row).on_conflict(
                conflict_target=[Province.code],
                update={Province.name: row["name"], Province.division_type: row["division_type"]},
            ).execute()
        for start in range(0, len(wards), 500):
            chunk = wards[start : start + 500]
            Ward.insert_many(chunk).on_conflict(
                conflict_target=[Ward.code],
                preserve=[Ward.name, Ward.division_type, Ward.province, Ward.name_folded],
            ).execute()
    return len(provinces), len(wards)
