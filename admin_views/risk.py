"""Risk checklists (configured here, answered on /declare) and the triage queue of risk cases."""

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.peewee import filters
from flask_admin.form import SecureForm
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from markupsafe import escape
from peewee import JOIN
from peewee import fn
from wtforms import HiddenField
from wtforms import SelectField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice

from admin_views.base import LiveOptionsFilter
from admin_views.base import PortalModelView
from admin_views.base import audit
from admin_views.base import clean_ids
from admin_views.citizens import WardFilter
from admin_views.citizens import ward_options
from admin_views.scoping import current_scope
from admin_views.scoping import scoped
from models.accounts import Staff
from models.audit import Action
from models.base import db
from models.places import Ward
from models.risk import CaseStatus
from models.risk import Checklist
from models.risk import ChecklistVersion
from models.risk import Declaration
from models.risk import Disease
from models.risk import Question
from models.risk import QuestionKind
from models.risk import RiskCase
from models.risk import RiskLevel
from models.risk import roles_that_can
from models.units import HealthUnit
from models.validation import FieldError
from services import clock
from services.display import format_datetime

LABELS = {
    "number": _l("Number"),
    "risk_level": _l("Risk"),
    "status": _l("Status"),
    "assignee": _l("Assigned to"),
    "opened_at": _l("Opened"),
    "touched_at": _l("Last action"),
    "closed_at": _l("Closed"),
    "checklist": _l("Checklist"),
    "medium_from": _l("Medium risk from (points)"),
    "high_from": _l("High risk from (points)"),
    "force_high": _l("Answers that force high risk"),
    "published_at": _l("Published"),
    "position": _l("Order"),
    "text": _l("Question"),
    "options": _l("Options"),
    "weight": _l("Weight"),
    "rule": _l("Rule"),
    "required": _l("Required"),
    "description": _l("Description"),
    "version": _l("Version"),
}


def disease_options():
    return [(str(d.id), d.name) for d in Disease.select().order_by(Disease.name)]


def assignee_options():
    """Staff of the signed-in account's unit and the units below it who work on cases."""
    query = Staff.select(Staff.id, Staff.full_name).where(Staff.role.in_(roles_that_can("edit", "risk_case")))
    if not current_scope().is_everything:
        query = query.where(Staff.unit.in_(sorted(current_user.unit.descendant_ids())))
    return [(str(s.id), s.full_name) for s in query.order_by(Staff.full_name)]


class YesFilter(filters.BasePeeweeFilter):
    """A filter with one choice, "yes": a saved view of the queue."""

    def __init__(self, column, name):
        super().__init__(column, name, options=(("1", _l("Yes")),))

    def operation(self):
        return _l("is")


class MineFilter(YesFilter):
    """My open cases."""

    def apply(self, query, value):
        return RiskCase.open(query).where(RiskCase.assignee == current_user.id)


class UntouchedFilter(YesFilter):
    """Open cases nobody has acted on for 24 hours."""

    def apply(self, query, value):
        return RiskCase.untouched(clock.now(), query)


class OpenFilter(filters.BasePeeweeFilter):
    def __init__(self, column, name):
        super().__init__(column, name, options=(("open", _l("Open")), ("closed", _l("Closed"))))

    def apply(self, query, value):
        if value == "closed":
            return query.where(RiskCase.status.in_(CaseStatus.CLOSED))
        return RiskCase.open(query)

    def operation(self):
        return _l("is")


class AgeFilter(filters.BasePeeweeFilter):
    """How long ago the case was opened."""

    BANDS = {"1": (0, 1), "3": (1, 3), "7": (3, 7), "older": (7, None)}

    def __init__(self, column, name):
        options = (
            ("1", _l("less than 1 day")),
            ("3", _l("1 to 3 days")),
            ("7", _l("3 to 7 days")),
            ("older", _l("more than 7 days")),
        )
        super().__init__(column, name, options=options)

    def apply(self, query, value):
        import datetime

        low, high = self.BANDS.get(value, (0, None))
        now = clock.now()
        query = query.where(RiskCase.opened_at <= now - datetime.timedelta(days=low))
        if high is not None:
            query = query.where(RiskCase.opened_at > now - datetime.timedelta(days=high))
        return query

    def operation(self):
        return _l("opened")


class MoveForm(SecureForm):
    id = HiddenField()
    status = SelectField(_l("New status"), choices=[], validate_choice=False)
    note = TextAreaField(_l("Note"))


class AssignForm(SecureForm):
    id = HiddenField()
    assignee = SelectField(_l("Assign to"), choices=[], validate_choice=False)
    note = TextAreaField(_l("Note"))


class BulkForm(SecureForm):
    ids = HiddenField()
    kind = HiddenField()
    status = SelectField(_l("New status"), choices=[], validate_choice=False)
    assignee = SelectField(_l("Assign to"), choices=[], validate_choice=False)
    note = TextAreaField(_l("Note"))


def _risk_badge(view, context, model, name):
    colour = {"high": "danger", "medium": "warning", "low": "secondary"}[model.risk_level]
    return Markup('<span class="badge badge-{}">{}</span>').format(colour, RiskLevel.LABELS[model.risk_level])


def _last_action(view, context, model, name):
    text = escape(format_datetime(model.touched_at))
    if model.is_untouched(clock.now()):
        return Markup('<span class="badge badge-warning untouched">{}</span> {}').format(_("Untouched for 24 h"), text)
    return text


class RiskCaseView(PortalModelView):
    """The triage queue: newest high-risk cases first, each case with its declarations and timeline."""

    resource = "risk_case"
    simple_list_pager = True
    column_list = [
        "number",
        "risk_level",
        "status",
        "disease",
        "full_name",
        "ward",
        "assignee",
        "opened_at",
        "touched_at",
    ]
    column_sortable_list = ["opened_at", "touched_at", "number"]
    column_default_sort = [("risk_rank", True), ("opened_at", True), ("id", True)]
    column_searchable_list = ["number", "phone"]
    column_labels = LABELS
    column_filters = [
        filters.FilterEqual(RiskCase.risk_level, _l("Risk"), options=list(RiskLevel.LABELS.items())),
        filters.FilterEqual(RiskCase.status, _l("Status"), options=list(CaseStatus.LABELS.items())),
        OpenFilter(RiskCase.status, _l("Open or closed")),
        WardFilter(RiskCase.ward, _l("Commune/ward"), options=ward_options),
        LiveOptionsFilter(RiskCase.disease, _l("Disease"), options=disease_options),
        AgeFilter(RiskCase.opened_at, _l("Age of the case")),
        LiveOptionsFilter(RiskCase.assignee, _l("Assigned to"), options=assignee_options),
        filters.FilterEmpty(RiskCase.assignee, _l("Assigned to")),
        MineFilter(RiskCase.assignee, _l("My open cases")),
        UntouchedFilter(RiskCase.touched_at, _l("Untouched for 24 h")),
    ]
    column_export_list = [
        "number",
        "risk_level",
        "status",
        "disease",
        "full_name",
        "date_of_birth",
        "phone",
        "ward",
        "unit",
        "assignee",
        "opened_at",
        "touched_at",
        "closed_at",
    ]
    column_formatters = {
        "risk_level": _risk_badge,
        "status": lambda v, c, m, n: CaseStatus.LABELS[m.status],
        "disease": lambda v, c, m, n: m.disease.name,
        "ward": lambda v, c, m, n: m.ward.name,
        "assignee": lambda v, c, m, n: m.assignee.full_name if m.assignee_id else "",
        "unit": lambda v, c, m, n: m.unit.name if m.unit_id else "",
        "touched_at": _last_action,
    }
    column_formatters_export = {
        "risk_level": lambda v, c, m, n: str(RiskLevel.LABELS[m.risk_level]),
        "status": lambda v, c, m, n: str(CaseStatus.LABELS[m.status]),
        "disease": lambda v, c, m, n: m.disease.name,
        "ward": lambda v, c, m, n: m.ward.name,
        "unit": lambda v, c, m, n: m.unit.name if m.unit_id else "",
        "assignee": lambda v, c, m, n: m.assignee.full_name if m.assignee_id else "",
    }
    column_details_list = column_export_list
    list_template = "admin/risk_case_list.html"
    details_template = "admin/risk_case_details.html"

    @property
    def can_create(self):
        return False  # cases open from citizens' declarations

    @property
    def can_edit(self):
        return False  # status and assignee change through move_to and assign, never a free edit

    @property
    def can_delete(self):
        return False  # a case is closed, never deleted

    def is_action_allowed(self, name):
        if name in ("bulk_assign", "bulk_move"):
            return self._allowed("edit")
        return super().is_action_allowed(name)

    def base_query(self):
        assignee = Staff.alias()
        return (
            RiskCase.select(
                RiskCase,
                Ward.code,
                Ward.name,
                Disease.id,
                Disease.name,
                assignee.id,
                assignee.full_name,
                HealthUnit.id,
                HealthUnit.name,
            )  # fmt: skip
            .join_from(RiskCase, Ward)
            .join_from(RiskCase, Disease)
            .join_from(RiskCase, assignee, JOIN.LEFT_OUTER, on=(RiskCase.assignee == assignee.id), attr="assignee")
            .join_from(RiskCase, HealthUnit, JOIN.LEFT_OUTER, on=(RiskCase.unit == HealthUnit.id), attr="unit")
        )

    def citizen_id_of(self, model):
        return model.citizen_id

    # The case page
    def saved_filter_urls(self):
        """Links for the saved filters: (label, url)."""
        found = []
        for index, flt in enumerate(self._filters):
            if isinstance(flt, MineFilter | UntouchedFilter):
                found.append((flt.name, self.get_url(".index_view", **{f"flt0_{index}": "1"})))
        return found

    def declarations(self, case):
        return list(
            Declaration.select(Declaration, ChecklistVersion, Checklist)
            .join_from(Declaration, ChecklistVersion)
            .join_from(ChecklistVersion, Checklist)
            .where(Declaration.case == case.id)
            .order_by(Declaration.declared_at.desc(), Declaration.id.desc())
        )

    def move_form(self, case):
        form = MoveForm(formdata=None, id=case.id)
        form.status.choices = [SelectChoice(s, CaseStatus.LABELS[s]) for s in case.next_statuses()]
        return form

    def assign_form(self, case):
        form = AssignForm(formdata=None, id=case.id, assignee=str(case.assignee_id or ""))
        form.assignee.choices = [SelectChoice("", _("Nobody"))] + [
            SelectChoice(str(s.id), f"{s.full_name} · {s.unit.name}") for s in RiskCase.assignable_staff(case.ward_id)
        ]
        return form

    def status_label(self, code):
        return CaseStatus.LABELS.get(code, code or "")

    def risk_label(self, code):
        return RiskLevel.LABELS.get(code, code or "")

    def is_untouched(self, case):
        return case.is_untouched(clock.now())

    def _editable_case(self, form):
        if not self._allowed("edit"):
            abort(403)
        if not form.validate():
            abort(400)
        case = self.get_one(form.id.data)
        if case is None:
            abort(404)
        return case

    def _move(self, case, status, note):
        old = case.move_to(status, by=current_user.id, note=note, now=clock.now())
        audit(
            Action.UPDATE,
            "risk_case",
            case.id,
            citizen_id=case.citizen_id,
            changes={"status": [old, status]},
            note=note or "",
        )

    def _assign(self, case, staff_id, note):
        old = case.assignee_id
        case.assign(staff_id, by=current_user.id, note=note, now=clock.now())
        audit(
            Action.UPDATE,
            "risk_case",
            case.id,
            citizen_id=case.citizen_id,
            changes={"assignee_id": [old, staff_id]},
            note=note or "",
        )

    @expose("/move/", methods=["POST"])
    def move(self):
        form = MoveForm(request.form)
        case = self._editable_case(form)
        try:
            with db.atomic():
                self._move(case, form.status.data, form.note.data)
        except FieldError as exc:
            flash(f"{_('Status')}: {exc.message}", "error")
        else:
            flash(_("The case is now: %(status)s.", status=CaseStatus.LABELS[case.status]), "success")
        return redirect(self.get_url(".details_view", id=case.id))

    @expose("/assign/", methods=["POST"])
    def assign(self):
        form = AssignForm(request.form)
        case = self._editable_case(form)
        value = (form.assignee.data or "").strip()
        staff_id = int(value) if value.isdigit() and len(value) < 10 else None
        if value and staff_id is None:
            abort(400)
        try:
            with db.atomic():
                self._assign(case, staff_id, form.note.data)
        except FieldError as exc:
            flash(f"{_('Assigned to')}: {exc.message}", "error")
        else:
            flash(_("The case was assigned."), "success")
        return redirect(self.get_url(".details_view", id=case.id))

    # Bulk changes: an action picks the cases, a page asks what to do with them.
    @action("bulk_assign", _l("Assign to…"))
    def action_bulk_assign(self, ids):
        return redirect(self.get_url(".bulk", kind="assign", ids=",".join(str(i) for i in clean_ids(ids))))

    @action("bulk_move", _l("Change status…"))
    def action_bulk_move(self, ids):
        return redirect(self.get_url(".bulk", kind="move", ids=",".join(str(i) for i in clean_ids(ids))))

    def _bulk_cases(self, raw_ids):
        ids = clean_ids((raw_ids or "").split(","))[:500]
        return list(scoped(RiskCase, self.base_query()).where(RiskCase.id.in_(ids)).order_by(RiskCase.id))

    @expose("/bulk/", methods=["GET", "POST"])
    def bulk(self):
        if not self._allowed("edit"):
            abort(403)
        form = BulkForm(request.form if request.method == "POST" else None, **request.args)
        kind = form.kind.data
        if kind not in ("assign", "move"):
            abort(400)
        cases = self._bulk_cases(form.ids.data)
        if not cases:
            flash(_("Choose at least one case you can see."), "error")
            return redirect(self.get_url(".index_view"))
        wards = {c.ward_id for c in cases}
        # Only staff who can see every chosen case.
        eligible = None
        for ward in wards:
            ids = {s.id: s for s in RiskCase.assignable_staff(ward)}
            eligible = ids if eligible is None else {k: v for k, v in eligible.items() if k in ids}
        form.assignee.choices = [SelectChoice("", _("Nobody"))] + [
            SelectChoice(str(s.id), f"{s.full_name} · {s.unit.name}") for s in (eligible or {}).values()
        ]
        form.status.choices = [SelectChoice(s, CaseStatus.LABELS[s]) for s in CaseStatus.ALL if s != CaseStatus.NEW]
        if request.method == "POST":
            if not form.validate():
                abort(400)
            done, refused = self._apply_bulk(kind, cases, form)
            if done:
                flash(_("%(count)s cases were changed.", count=done), "success")
            for number, message in refused:
                flash(f"{number}: {message}", "error")
            return redirect(self.get_url(".index_view"))
        return self.render("admin/risk_bulk.html", form=form, cases=cases, kind=kind, status_label=self.status_label)

    def _apply_bulk(self, kind, cases, form):
        done, refused = 0, []
        value = (form.assignee.data or "").strip()
        for case in cases:
            try:
                with db.atomic():
                    if kind == "assign":
                        self._assign(case, int(value) if value.isdigit() and len(value) < 10 else None, form.note.data)
                    else:
                        self._move(case, form.status.data, form.note.data)
            except FieldError as exc:
                refused.append((case.number, str(exc.message)))
            else:
                done += 1
        return done, refused


class DiseaseView(PortalModelView):
    resource = "checklist"
    audit_reads = False
    column_list = ["code", "name", "active"]
    form_columns = ["code", "name", "active"]
    column_default_sort = "name"


class ChecklistView(PortalModelView):
    resource = "checklist"
    audit_reads = False
    column_list = ["name", "disease", "active"]
    form_columns = ["name", "disease", "description", "active"]
    column_labels = LABELS
    column_formatters = {"disease": lambda v, c, m, n: m.disease.name}
    details_template = "admin/risk_checklist_details.html"

    def base_query(self):
        return Checklist.select(Checklist, Disease).join(Disease)

    def versions(self, checklist):
        return list(
            ChecklistVersion.select(ChecklistVersion, fn.COUNT(Declaration.id).alias("answered"))
            .join(Declaration, JOIN.LEFT_OUTER)
            .where(ChecklistVersion.checklist == checklist.id)
            .group_by(ChecklistVersion.id)
            .order_by(ChecklistVersion.number.desc())
        )


class VersionForm(SecureForm):
    id = HiddenField()


class ChecklistVersionView(PortalModelView):
    """Questions, thresholds and forcing rules; a draft is edited, then published and frozen."""

    resource = "checklist"
    audit_reads = False
    column_list = ["checklist", "number", "medium_from", "high_from", "published_at"]
    column_default_sort = [("checklist", False), ("number", True)]
    column_labels = LABELS
    column_formatters = {"checklist": lambda v, c, m, n: m.checklist.name}
    form_columns = ["checklist", "medium_from", "high_from", "force_high"]
    form_args = {
        "force_high": {
            "description": _l(
                "One rule a line; conditions joined by &, each a question code (the question scored) or "
                "code = value. Example: close_contact = confirmed & fever"
            )
        }
    }
    inline_models = [
        (
            Question,
            {
                "form_columns": ["id", "position", "code", "text", "kind", "options", "weight", "rule", "required"],
                "form_args": {
                    "position": {"label": LABELS["position"]},
                    "code": {"label": _l("Code")},
                    "text": {"label": LABELS["text"]},
                    "kind": {"label": _l("Kind of answer")},
                    "options": {
                        "label": LABELS["options"],
                        "description": _l("Choice questions: one option a line, as value | label | weight."),
                    },
                    "weight": {
                        "label": LABELS["weight"],
                        "description": _l("Points for yes, or when the rule is met."),
                    },
                    "rule": {
                        "label": LABELS["rule"],
                        "description": _l("Numbers: >= 38 (or >, <, <=, =). Dates: within 14 (days)."),
                    },
                    "required": {"label": LABELS["required"]},
                },
            },
        )
    ]
    details_template = "admin/risk_version_details.html"

    def base_query(self):
        return ChecklistVersion.select(ChecklistVersion, Checklist).join(Checklist)

    def on_model_change(self, form, model, is_created):
        if is_created:
            latest = (
                ChecklistVersion.select(fn.MAX(ChecklistVersion.number))
                .where(ChecklistVersion.checklist == model.checklist_id)
                .scalar()
            )
            model.number = (latest or 0) + 1

    def questions(self, version):
        return version.ordered_questions()

    def kind_label(self, kind):
        return QuestionKind.LABELS.get(kind, kind)

    def version_form(self, version):
        return VersionForm(formdata=None, id=version.id)

    def _version_from_form(self):
        if not self._allowed("edit"):
            abort(403)
        form = VersionForm(request.form)
        if not form.validate():
            abort(400)
        version = self.get_one(form.id.data)
        if version is None:
            abort(404)
        return version

    @expose("/publish/", methods=["POST"])
    def publish(self):
        version = self._version_from_form()
        try:
            with db.atomic():
                version.publish(now=clock.now())
                audit(Action.UPDATE, "checklist_version", version.id, changes={"published_at": [None, "now"]})
        except FieldError as exc:
            flash(f"{self.column_labels.get(exc.field, exc.field)}: {exc.message}", "error")
        else:
            flash(_("Version %(n)s is published: citizens answer it from now on.", n=version.number), "success")
        return redirect(self.get_url(".details_view", id=version.id))

    @expose("/new-draft/", methods=["POST"])
    def new_draft(self):
        version = self._version_from_form()
        with db.atomic():
            draft = version.new_draft()
            audit(Action.CREATE, "checklist_version", draft.id, copied_from=version.id)
        flash(_("Version %(n)s was created as a draft; edit it, then publish it.", n=draft.number), "success")
        return redirect(self.get_url(".edit_view", id=draft.id))
