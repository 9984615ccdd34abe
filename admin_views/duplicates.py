"""Possible duplicate persons: review a pair side by side, merge it or say it is two people."""

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_admin.contrib.peewee import filters
from flask_admin.form import SecureForm
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import JOIN
from peewee import IntegrityError
from wtforms import HiddenField
from wtforms import TextAreaField

from admin_views.base import PortalModelView
from admin_views.base import audit
from admin_views.scoping import scoped
from models.audit import Action
from models.citizens import Citizen
from models.duplicates import OPEN
from models.duplicates import REASONS
from models.duplicates import STATUSES
from models.duplicates import DuplicateCandidate
from models.labels import FIELD_LABELS
from models.places import Ward
from models.validation import FieldError
from services.display import format_date
from services.duplicates import MERGE_FIELDS
from services.duplicates import default_choices
from services.duplicates import merge


class PairForm(SecureForm):
    id = HiddenField()
    note = TextAreaField(_l("Note"))


def _person(view, context, model, name):
    citizen = getattr(model, name, None)
    if citizen is None or citizen.id is None:
        return ""
    return f"{citizen.full_name} ({citizen.health_code or ''})"


class DuplicateCandidateView(PortalModelView):
    resource = "citizen"
    column_list = ["found_at", "first", "second", "reason", "status"]
    column_sortable_list = ["found_at"]
    column_default_sort = ("id", True)
    column_labels = {
        "found_at": _l("Found on"),
        "first": _l("First record"),
        "second": _l("Second record"),
        "reason": _l("Reason"),
        "status": _l("Status"),
        "note": _l("Note"),
    }
    column_filters = [
        filters.FilterEqual(DuplicateCandidate.reason, _l("Reason"), options=REASONS),
        filters.FilterEqual(DuplicateCandidate.status, _l("Status"), options=STATUSES),
    ]
    column_formatters = {
        "first": _person,
        "second": _person,
        "reason": lambda v, c, m, n: dict(REASONS).get(m.reason, m.reason),
        "status": lambda v, c, m, n: dict(STATUSES).get(m.status, m.status),
    }
    column_details_list = ["found_at", "reason", "status", "decided_at", "note"]
    details_template = "admin/duplicate_details.html"
    can_export = False

    @property
    def can_create(self):
        return False  # found on create, on import and by find-duplicates

    @property
    def can_edit(self):
        return False  # decided with merge / not a duplicate

    @property
    def can_delete(self):
        return False

    def base_query(self):
        first, second = Citizen.alias("first"), Citizen.alias("second")
        return (
            DuplicateCandidate.select(DuplicateCandidate, first, second)
            .join_from(
                DuplicateCandidate,
                first,
                JOIN.LEFT_OUTER,
                on=(DuplicateCandidate.citizen_a_id == first.id),
                attr="first",
            )
            .join_from(
                DuplicateCandidate,
                second,
                JOIN.LEFT_OUTER,
                on=(DuplicateCandidate.citizen_b_id == second.id),
                attr="second",
            )
        )

    def citizen_id_of(self, model):
        return model.citizen_a_id

    # The review screen
    def pair_of(self, candidate):
        """The two citizens, both within the account's scope, oldest first; None once either is gone."""
        ids = (candidate.citizen_a_id, candidate.citizen_b_id)
        found = {c.id: c for c in scoped(Citizen, Citizen.select(Citizen, Ward).join(Ward)).where(Citizen.id.in_(ids))}
        if len(found) != 2:
            return None
        return found[ids[0]], found[ids[1]]

    def merge_rows(self, first, second):
        """(field, label, first value, second value, "a" or "b" checked by default) for the form."""
        choices = default_choices(first, second)
        rows = []
        for name in MERGE_FIELDS:
            rows.append(
                (
                    name,
                    FIELD_LABELS.get(name, name),
                    _shown(first, name),
                    _shown(second, name),
                    "a" if choices[name] == "survivor" else "b",
                )
            )
        return rows

    def pair_form(self, candidate):
        return PairForm(formdata=None, id=candidate.id)

    def _open_candidate(self, form):
        if not self._allowed("edit"):
            abort(403)
        if not form.validate():
            abort(400)
        candidate = self.get_one(form.id.data)
        if candidate is None:
            abort(404)
        pair = self.pair_of(candidate)
        if pair is None:
            abort(404)
        return candidate, pair

    @expose("/merge/", methods=["POST"])
    def merge_view(self):
        form = PairForm(request.form)
        candidate, (first, second) = self._open_candidate(form)
        back = redirect(self.get_url(".details_view", id=candidate.id))
        if candidate.status != OPEN:
            flash(_("This pair has already been decided."), "error")
            return back
        keep = request.form.get("survivor")
        if keep not in ("a", "b"):
            abort(400)
        survivor, merged = (first, second) if keep == "a" else (second, first)
        choices = default_choices(survivor, merged)  # for a field the form did not send
        for name in MERGE_FIELDS:
            side = request.form.get(f"field_{name}")
            if side is None:
                continue
            if side not in ("a", "b"):
                abort(400)
            choices[name] = "survivor" if side == keep else "merged"
        try:
            merge(
                survivor,
                merged,
                choices,
                by=current_user._get_current_object(),
                note=form.note.data,
                address=request.remote_addr,
            )
        except FieldError as exc:
            flash(f"{FIELD_LABELS.get(exc.field, exc.field)}: {exc.message}", "error")
            return back
        except IntegrityError:
            flash(_("The change conflicts with other records and was not saved."), "error")
            return back
        flash(_("The two records were merged into one."), "success")
        return redirect(self.get_url("citizen.details_view", id=survivor.id))

    @expose("/not-duplicate/", methods=["POST"])
    def not_duplicate_view(self):
        form = PairForm(request.form)
        candidate, _pair = self._open_candidate(form)
        try:
            candidate.mark_not_duplicate(by=current_user._get_current_object(), note=form.note.data)
        except FieldError as exc:
            flash(str(exc.message), "error")
            return redirect(self.get_url(".details_view", id=candidate.id))
        audit(
            Action.UPDATE,
            "duplicate_candidate",
            candidate.id,
            citizen_id=candidate.citizen_a_id,
            changes={"status": [OPEN, candidate.status]},
            citizens=[candidate.citizen_a_id, candidate.citizen_b_id],
            note=candidate.note,
        )
        flash(_("Remembered: these are two different people."), "success")
        return redirect(self.get_url(".index_view"))


def _shown(citizen, name):
    value = getattr(citizen, name)
    if name == "ward":
        return citizen.ward.name
    if name == "household":
        return str(value) if citizen.household_id else ""
    if hasattr(value, "isoformat"):
        return format_date(value)
    return "" if value is None else str(value)
