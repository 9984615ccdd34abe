"""Health units and their jurisdictions."""

from flask_babel import lazy_gettext as _l
from peewee import JOIN
from wtfpeewee.fields import SelectMultipleQueryField

from admin_views.base import PortalModelView
from models.places import Province
from models.places import Ward
from models.units import HealthUnit
from models.units import UnitKind
from models.units import UnitWard

KIND_LABELS = UnitKind.LABELS


class HealthUnitView(PortalModelView):
    resource = "unit"
    audit_reads = False  # units are not personal data
    column_list = ["code", "name", "kind", "parent", "province", "email", "active"]
    column_searchable_list = ["code", "name"]
    column_default_sort = "code"
    form_columns = ["code", "name", "kind", "parent", "province", "email", "active"]
    form_extra_fields = {
        "wards": SelectMultipleQueryField(
            _l("Communes/wards of the jurisdiction"),
            query=Ward.select().order_by(Ward.province, Ward.name),
            get_label=lambda w: f"{w.name} ({w.code})",
        )
    }
    column_formatters = {
        "kind": lambda v, c, m, n: KIND_LABELS.get(m.kind, m.kind),
        "parent": lambda v, c, m, n: m.parent.name if m.parent_id else "",
    }
    details_template = "admin/unit_details.html"

    def base_query(self):
        parent = HealthUnit.alias()
        return (
            HealthUnit.select(HealthUnit, Province, parent)
            .join_from(HealthUnit, Province)
            .join_from(HealthUnit, parent, JOIN.LEFT_OUTER, on=(HealthUnit.parent == parent.id), attr="parent")
        )

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if obj is not None and not form.wards.raw_data:
            form.wards.data = [link.ward for link in obj.ward_links]
        return form

    def on_model_change(self, form, model, is_created):
        # wards is not a column: populate_obj put a list on the instance, the link table keeps it.
        model.__dict__.pop("wards", None)

    def after_save(self, form, model, is_created):
        model.set_wards([w.code for w in form.wards.data or []])

    def jurisdiction_names(self, unit):
        codes = unit.jurisdiction()
        own = {link.ward_id for link in UnitWard.select(UnitWard.ward).where(UnitWard.unit == unit)}
        wards = Ward.select().where(Ward.code.in_(sorted(codes))).order_by(Ward.name) if codes else []
        return [(w, w.code in own) for w in wards]
