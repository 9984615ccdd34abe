"""The audit log: read-only, filterable."""

from flask_admin.contrib.peewee import filters
from flask_babel import lazy_gettext as _l

from admin_views.base import PortalModelView
from models.audit import Action
from models.audit import AuditEvent


class AuditEventView(PortalModelView):
    resource = "audit"
    can_view_details = True
    simple_list_pager = True
    column_list = ["at", "actor", "role", "unit_code", "action", "object_type", "object_id", "citizen_id", "address"]
    column_default_sort = ("id", True)
    column_sortable_list = ["at"]
    column_filters = [
        filters.FilterEqual(AuditEvent.action, _l("Action"), options=[(a, a) for a in Action.ALL]),
        filters.FilterEqual(AuditEvent.actor, _l("Account")),
        filters.FilterEqual(AuditEvent.object_type, _l("Data")),
        filters.FilterEqual(AuditEvent.citizen_id, _l("Citizen id")),
        filters.FilterEqual(AuditEvent.unit_code, _l("Unit")),
        filters.DateTimeBetweenFilter(AuditEvent.at, _l("Time")),
    ]

    @property
    def can_create(self):
        return False

    @property
    def can_edit(self):
        return False

    @property
    def can_delete(self):
        return False
