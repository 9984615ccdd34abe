"""Staff accounts: one per person, one-time passwords, unlock."""

from flask import flash
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from admin_views.base import PortalModelView
from admin_views.base import audit
from admin_views.base import clean_ids
from admin_views.scoping import scoped
from models.accounts import Role
from models.accounts import Staff
from models.audit import Action
from models.base import db
from models.units import HealthUnit


class StaffView(PortalModelView):
    resource = "staff"
    audit_reads = False
    column_list = [
        "username",
        "full_name",
        "unit",
        "role",
        "active",
        "must_change_password",
        "locked_until",
        "last_sign_in_at",
    ]
    column_searchable_list = ["username", "full_name"]
    column_filters = ["role", "active"]
    column_default_sort = "username"
    column_export_exclude_list = ["password_hash", "session_nonce"]
    column_details_exclude_list = ["password_hash", "session_nonce"]
    form_columns = ["username", "full_name", "email", "unit", "role", "active"]
    column_formatters = {
        "role": lambda v, c, m, n: Role.LABELS.get(m.role, m.role),
        "unit": lambda v, c, m, n: m.unit.name,
    }

    def base_query(self):
        return Staff.select(Staff, HealthUnit).join(HealthUnit)

    def on_model_change(self, form, model, is_created):
        model.username = (model.username or "").strip().lower()
        if is_created:
            self._new_password = model.issue_one_time_password()

    def after_model_change(self, form, model, is_created):
        if is_created:
            flash(
                _(
                    "One-time password for %(user)s: %(password)s — hand it over in person; it must be changed at first sign-in.",
                    user=model.username,
                    password=self._new_password,
                ),
                "warning",
            )

    @action(
        "reset_password",
        _l("Issue a new one-time password"),
        _l("Issue new one-time passwords to the selected accounts?"),
    )
    def action_reset_password(self, ids):
        if not self.can_edit:
            return
        for account in scoped(Staff, self.base_query()).where(Staff.id.in_(clean_ids(ids))):
            with db.atomic():
                password = account.issue_one_time_password()
                account.locked_until = None
                account.failed_sign_ins = 0
                account.save()
                audit(Action.UPDATE, "staff", account.id, changes={"password": "one-time password issued"})
            flash(
                _("One-time password for %(user)s: %(password)s", user=account.username, password=password), "warning"
            )

    @action("unlock", _l("Unlock"), _l("Unlock the selected accounts?"))
    def action_unlock(self, ids):
        if not self.can_edit:
            return
        for account in scoped(Staff, self.base_query()).where(Staff.id.in_(clean_ids(ids))):
            with db.atomic():
                account.locked_until = None
                account.failed_sign_ins = 0
                account.save()
                audit(Action.UPDATE, "staff", account.id, changes={"locked_until": "unlocked"})
        flash(_("The selected accounts were unlocked."), "success")
