"""Citizens, households and family relations."""

import segno
from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from flask_admin import expose
from flask_admin.contrib.peewee import filters
from flask_admin.form import SecureForm
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import HiddenField

from admin_views.base import LiveOptionsFilter
from admin_views.base import PortalModelView
from admin_views.base import audit
from admin_views.scoping import scoped
from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.citizens import FAMILY_KINDS
from models.citizens import FAMILY_LABELS
from models.citizens import FORM_FIELDS
from models.citizens import RELATIONS_TO_HEAD
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.citizens import Household
from models.duplicates import DuplicateCandidate
from models.places import Ward
from models.records import record_of
from services.display import format_date
from services.display import format_datetime
from services.duplicates import find_duplicates_of


def ward_options():
    """(code, name) of the wards the signed-in account may filter by."""
    return [(str(w.code), w.name) for w in scoped(Ward).order_by(Ward.name)]


class WardFilter(LiveOptionsFilter):
    """Filter by residence commune; only the account's own communes are offered."""


class CitizenActionForm(SecureForm):
    id = HiddenField()


class CitizenView(PortalModelView):
    resource = "citizen"
    simple_list_pager = True  # counting a million rows per page view is not worth it
    column_list = ["full_name", "date_of_birth", "gender", "health_code", "phone", "ward", "permanent_address"]
    column_sortable_list = ["full_name", "date_of_birth", "health_code"]
    column_default_sort = ("id", True)
    column_searchable_list = ["full_name"]  # shows the search box; Citizen.matching does the search
    column_filters = [
        WardFilter(Citizen.ward, _l("Commune/ward"), options=ward_options),
        filters.FilterEqual(Citizen.gender, _l("Gender"), options=(("M", _l("Male")), ("F", _l("Female")))),
        filters.FilterEmpty(Citizen.phone, _l("Phone")),
        filters.FilterEmpty(Citizen.insurance_number, _l("Health insurance number")),
        filters.FilterEmpty(Citizen.national_id, _l("ID number (CCCD/CMND)")),
    ]
    column_export_list = [
        "health_code",
        "full_name",
        "date_of_birth",
        "gender",
        "phone",
        "national_id",
        "insurance_number",
        "ward",
        "permanent_address",
    ]
    form_columns = list(FORM_FIELDS)
    form_args = {
        "health_code": {"description": _l("Leave blank and the portal issues a new code with a check digit.")},
        "phone": {"description": _l("Mobile number: 0912345678, +84912345678 and 84912345678 are the same.")},
    }
    form_ajax_refs = {"household": {"fields": ["book_number"]}}
    domain_fields = ("phone", "email", "national_id", "old_national_id", "insurance_number", "health_code")
    details_template = "admin/citizen_details.html"
    column_formatters = {"ward": lambda v, c, m, n: m.ward.name}

    def base_query(self):
        return Citizen.select(Citizen, Ward).join(Ward)

    def citizen_id_of(self, model):
        return model.id

    def after_save(self, form, model, is_created):
        if is_created:
            find_duplicates_of([model.id])  # inside the create's transaction

    def open_duplicates(self, citizen):
        """(candidate id, the other citizen) of the open duplicate pairs the account may review."""
        candidates = scoped(DuplicateCandidate, DuplicateCandidate.open_for(citizen.id))
        pairs = [(c.id, c.other_id(citizen.id)) for c in candidates]
        others = {c.id: c for c in Citizen.select().where(Citizen.id.in_([o for _c, o in pairs]))} if pairs else {}
        return [(c, others[o]) for c, o in pairs if o in others]

    def action_form_for(self, citizen):
        return CitizenActionForm(formdata=None, id=citizen.id)

    @expose("/issue-code/", methods=["POST"])
    def issue_code(self):
        """Give a citizen who has none a personal health code."""
        if not self._allowed("edit"):
            abort(403)
        form = CitizenActionForm(request.form)
        if not form.validate():
            abort(400)
        citizen = self.get_one(form.id.data)
        if citizen is None:
            abort(404)
        if citizen.health_code:
            flash(_("This citizen already has a health code."), "info")
        else:
            with db.atomic():
                citizen.save()
                audit(
                    Action.UPDATE,
                    "citizen",
                    citizen.id,
                    citizen_id=citizen.id,
                    changes={"health_code": [None, citizen.health_code]},
                )
            flash(_("Health code %(code)s issued.", code=citizen.health_code), "success")
        return redirect(self.get_url(".details_view", id=citizen.id))

    @expose("/slip/")
    def slip(self):
        """A small printable slip with the health code and how to look the record up."""
        citizen = self.get_one(request.args.get("id", ""))
        if citizen is None or not citizen.health_code:
            abort(404)
        audit(Action.VIEW, "citizen", citizen.id, citizen_id=citizen.id, page="slip")
        lookup_url = url_for("lookup.lookup", _external=True)
        qr = Markup(segno.make(lookup_url, error="m").svg_inline(scale=3))
        return self.render("admin/citizen_slip.html", citizen=citizen, lookup_url=lookup_url, qr=qr)

    def record_parts(self, citizen):
        """Everything the citizen's page shows below the citizen's own fields."""
        return {
            **record_of(citizen),
            "history": list(AuditEvent.history_of(citizen.id).limit(100)),
            "relation_labels": dict(RELATIONS_TO_HEAD),
            "family_labels": FAMILY_LABELS,
            "format_date": format_date,
            "format_datetime": format_datetime,
        }


class HouseholdView(PortalModelView):
    resource = "citizen"
    column_list = ["book_number", "ward", "address"]
    column_searchable_list = ["book_number", "address"]
    column_filters = [WardFilter(Household.ward, _l("Commune/ward"), options=ward_options)]
    form_columns = ["book_number", "ward", "address"]
    column_default_sort = ("id", True)
    column_formatters = {"ward": lambda v, c, m, n: m.ward.name}
    details_template = "admin/household_details.html"

    def base_query(self):
        return Household.select(Household, Ward).join(Ward)

    def members(self, household):
        return list(Citizen.select().where(Citizen.household == household.id).order_by(Citizen.date_of_birth))


class FamilyRelationView(PortalModelView):
    resource = "citizen"
    column_list = ["citizen", "kind", "relative"]
    form_columns = ["citizen", "kind", "relative"]
    form_ajax_refs = {
        "citizen": {"fields": ["full_name"]},
        "relative": {"fields": ["full_name"]},
    }
    column_formatters = {
        "citizen": lambda v, c, m, n: m.citizen.full_name,
        "relative": lambda v, c, m, n: m.relative.full_name,
        "kind": lambda v, c, m, n: dict(FAMILY_KINDS).get(m.kind, m.kind),
    }

    def base_query(self):
        relative = Citizen.alias()
        return (
            FamilyRelation.select(FamilyRelation, Citizen, relative)
            .join_from(FamilyRelation, Citizen, on=(FamilyRelation.citizen == Citizen.id))
            .join_from(FamilyRelation, relative, on=(FamilyRelation.relative == relative.id), attr="relative")
        )

    def create_form(self, obj=None):
        form = super().create_form(obj)
        citizen_id = request.args.get("citizen", type=int)
        if citizen_id and not form.citizen.data:
            form.citizen.data = scoped(Citizen).where(Citizen.id == citizen_id).first()
        return form
