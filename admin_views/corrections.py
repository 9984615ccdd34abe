"""Correction requests from citizens, decided by the staff of the citizen's commune."""

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_admin.form import SecureForm
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import HiddenField
from wtforms import TextAreaField

from admin_views.base import PortalModelView
from admin_views.base import audit
from models.audit import Action
from models.citizens import Citizen
from models.corrections import STATUSES
from models.corrections import CorrectionRequest
from models.labels import FIELD_LABELS
from models.validation import FieldError


class DecisionForm(SecureForm):
    id = HiddenField()
    decision = HiddenField()
    reason = TextAreaField(_l("Reason for the citizen"))


class CorrectionRequestView(PortalModelView):
    resource = "citizen"
    column_list = ["created_at", "citizen", "field", "proposed_value", "status"]
    column_default_sort = ("id", True)
    column_filters = ["status"]
    column_labels = {"proposed_value": _l("Correct value"), "status": _l("Status"), "reason": _l("Reason")}
    column_formatters = {
        "citizen": lambda v, c, m, n: f"{m.citizen.full_name} ({m.citizen.health_code})",
        "field": lambda v, c, m, n: FIELD_LABELS.get(m.field, m.field),
        "status": lambda v, c, m, n: dict(STATUSES).get(m.status, m.status),
    }
    details_template = "admin/correction_details.html"

    @property
    def can_create(self):
        return False  # citizens ask from their record page

    @property
    def can_edit(self):
        return False  # decided with accept / reject, never rewritten

    @property
    def can_delete(self):
        return False

    def base_query(self):
        return CorrectionRequest.select(CorrectionRequest, Citizen).join(Citizen)

    def decision_form(self, correction):
        return DecisionForm(formdata=None, id=correction.id)

    def current_value(self, correction):
        return getattr(correction.citizen, correction.field, "")

    @expose("/decide/", methods=["POST"])
    def decide(self):
        if not self._allowed("edit"):
            abort(403)
        form = DecisionForm(request.form)
        if not form.validate():
            abort(400)
        correction = self.get_one(form.id.data)
        if correction is None:
            abort(404)
        try:
            if form.decision.data == "accept":
                changes = correction.accept(by=current_user.id)
                audit(
                    Action.UPDATE,
                    "citizen",
                    correction.citizen_id,
                    citizen_id=correction.citizen_id,
                    changes=changes,
                    correction_request=correction.id,
                )
                flash(_("The correction was applied."), "success")
            elif form.decision.data == "reject":
                correction.reject(by=current_user.id, reason=form.reason.data)
                audit(
                    Action.UPDATE,
                    "correction_request",
                    correction.id,
                    citizen_id=correction.citizen_id,
                    changes={"status": ["pending", "rejected"]},
                )
                flash(_("The request was rejected; the citizen will see your reason."), "success")
            else:
                abort(400)
        except FieldError as exc:
            flash(f"{FIELD_LABELS.get(exc.field, exc.field)}: {exc.message}", "error")
        return redirect(self.get_url(".details_view", id=correction.id))
