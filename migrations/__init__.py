"""Numbered schema migrations: mNNNN_name.py modules, each with up(database)."""

import importlib
import pkgutil

from peewee import CharField
from peewee import DateTimeField

from models.base import BaseModel
from models.base import db
from models.base import utcnow


class SchemaMigration(BaseModel):
    """A migration that has been applied."""

    name = CharField(unique=True, max_length=128)
    applied_at = DateTimeField(default=utcnow)


def available():
    """(name, module) of every migration, in number order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("m"))
    return [(name, importlib.import_module(f"{__name__}.{name}")) for name in names]


def migrate():
    """Apply every pending migration, each in its own transaction; return their names."""
    db.create_tables([SchemaMigration], safe=True)
    done = {row.name for row in SchemaMigration.select(SchemaMigration.name)}
    applied = []
    for name, module in available():
        if name in done:
            continue
        with db.atomic():
            module.up(db.obj)
            SchemaMigration.create(name=name)
        applied.append(name)
    return applied
