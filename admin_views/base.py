"""The base of every back-office view: sign-in, permissions, scope, transactions, audit."""

import datetime
import logging
import re

from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask_admin import AdminIndexView
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext as admin_lazy_gettext
from flask_admin.contrib.peewee import ModelView
from flask_admin.contrib.peewee import filters
from flask_admin.contrib.peewee.ajax import QueryAjaxModelLoader
from flask_admin.contrib.peewee.form import CustomModelConverter
from flask_admin.contrib.peewee.form import save_inline
from flask_admin.form import SecureForm
from flask_babel import gettext as _
from flask_login import current_user
from peewee import IntegerField
from peewee import IntegrityError
from playhouse.shortcuts import model_to_dict
from wtforms import fields
from wtforms import validators

from admin_views.scoping import allowed
from admin_views.scoping import current_scope
from admin_views.scoping import scoped
from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.labels import FIELD_LABELS
from models.validation import FieldError
from models.validation import parse_date
from services.display import format_date
from services.display import format_datetime

log = logging.getLogger(__name__)
# Never written to the audit trail, never shown in a diff.
SECRET_FIELDS = {"password_hash", "session_nonce", "search_text", "updated_at", "created_at"}
UNIQUE_COLUMN = re.compile(r"UNIQUE constraint failed: \w+\.(\w+)|Key \((\w+)\)=")


class VietnameseDateField(fields.StringField):
    """A date typed as dd/mm/yyyy; the domain parser gives the error message."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"placeholder": "dd/mm/yyyy", "inputmode": "numeric", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def _value(self):
        if isinstance(self.data, datetime.date):
            return format_date(self.data)
        return self.raw_data[0] if self.raw_data else ""

    def process_formdata(self, valuelist):
        self.raw_data = valuelist
        try:
            self.data = parse_date(valuelist[0] if valuelist else None, field=self.name)
        except FieldError as exc:
            self.data = None
            raise ValueError(str(exc.message)) from exc


class PortalModelConverter(CustomModelConverter):
    """Dates as dd/mm/yyyy text fields instead of an ISO date picker."""

    def handle_date(self, model, field, **kwargs):
        return field.name, VietnameseDateField(**kwargs)


class ScopedAjaxLoader(QueryAjaxModelLoader):
    """AJAX choices limited to what the signed-in account may see."""

    def get_one(self, pk):
        pk = _integer_id(pk)
        if pk is None:
            return None
        return scoped(self.model).where(self.model._meta.primary_key == pk).first()

    def get_list(self, term, offset=0, limit=10):
        query = scoped(self.model)
        matching = getattr(self.model, "matching", None)
        if term and matching:
            query = matching(term, query)
        elif term:
            condition = None
            for field in self._cached_fields:
                clause = field ** f"%{term}%"
                condition = clause if condition is None else condition | clause
            query = query.where(condition)
        return list(query.order_by(self.model._meta.primary_key).offset(offset or 0).limit(min(limit, 50)))


def _integer_id(value):
    """An id typed into a URL as an int that fits an integer column, or None."""
    text = str(value).strip()
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if number < 2**31 else None


def clean_ids(ids):
    """The well-formed integer ids among those a form posted."""
    return [n for n in (_integer_id(i) for i in ids or ()) if n is not None]


class LiveOptionsFilter(filters.FilterEqual):
    """An equality filter whose choices are read from the database on each request."""

    options_per_request = True

    def get_options(self, view):
        # Flask-Admin also asks once at start-up, when there is no request and maybe no schema yet.
        return None

    def clean(self, value):
        number = _integer_id(value)
        return -1 if number is None else number


def audit(action_name, object_type=None, object_id=None, citizen_id=None, **detail):
    """Append an audit event for the signed-in account."""
    actor = current_user if current_user.is_authenticated else None
    return AuditEvent.record(
        action_name,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        citizen_id=citizen_id,
        address=request.remote_addr,
        **detail,
    )


def snapshot(model):
    """A model's own column values, without secrets."""
    data = model_to_dict(model, recurse=False)
    return {k: v for k, v in data.items() if k not in SECRET_FIELDS}


def diff(before, after):
    """{field: [old, new]} for every value that changed."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


class SignInFirst:
    """For the back office's views: a visitor is sent to sign in, an account with a one-time password
    to change it, and a signed-in account the view is not for gets 403."""

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        if current_user.must_change_password:
            return redirect(url_for("auth.change_password"))
        abort(403)


class PortalModelView(SignInFirst, ModelView):
    """Every model view: signed in, permitted, scoped, transactional and audited."""

    resource = None  # permission resource in models.accounts.PERMISSIONS
    form_base_class = SecureForm
    model_form_converter = PortalModelConverter
    can_view_details = True
    page_size = 20
    can_set_page_size = False
    export_types = ["csv"]
    column_display_pk = False
    details_modal = False
    column_type_formatters = {
        datetime.date: lambda view, value, name=None: format_date(value),
        datetime.datetime: lambda view, value, name=None: format_datetime(value),
        bool: lambda view, value, name=None: _("Yes") if value else _("No"),
        type(None): lambda view, value, name=None: "",
    }
    column_type_formatters_detail = column_type_formatters
    column_type_formatters_export = {
        datetime.date: lambda view, value, name=None: format_date(value),
        datetime.datetime: lambda view, value, name=None: format_datetime(value),
        type(None): lambda view, value, name=None: "",
    }

    def __init__(self, model, *args, **kwargs):
        self.column_labels = {**FIELD_LABELS, **(getattr(self, "column_labels", None) or {})}
        # Form fields take the same Vietnamese labels as the list and detail columns.
        form_args = {name: dict(args) for name, args in (getattr(self, "form_args", None) or {}).items()}
        for name, label in self.column_labels.items():
            form_args.setdefault(name, {}).setdefault("label", label)
        self.form_args = form_args
        super().__init__(model, *args, **kwargs)

    # Permissions, asked afresh on every request.
    def _allowed(self, action_name):
        return allowed(action_name, self.resource)

    @property
    def can_create(self):
        return self._allowed("create")

    @property
    def can_edit(self):
        return self._allowed("edit")

    @property
    def can_delete(self):
        return self._allowed("delete")

    @property
    def can_export(self):
        return self._allowed("export")

    @property
    def export_max_rows(self):
        from flask import current_app

        return current_app.config["EXPORT_MAX_ROWS"]

    def is_accessible(self):
        return self._allowed("view")

    def is_action_allowed(self, name):
        if name == "delete":
            return self.can_delete
        return super().is_action_allowed(name)

    # Scope: every path reads through get_query or get_one.
    def base_query(self):
        """The unscoped query with the joins the list needs."""
        return self.model.select()

    def get_query(self):
        query = scoped(self.model, self.base_query())
        search = g.get("portal_search")
        if search and hasattr(self.model, "matching"):
            query = self.model.matching(search, query)
        return query

    def get_one(self, id):
        pk = self.model._meta.primary_key
        value = _integer_id(id) if isinstance(pk, IntegerField) else id
        if value is None:
            return None
        model = scoped(self.model, self.base_query()).where(pk == value).first()
        if model is not None and request.method == "GET" and request.endpoint.endswith((".details_view", ".edit_view")):
            audit(Action.VIEW, self.model._meta.table_name, model.get_id(), citizen_id=self.citizen_id_of(model))
        return model

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        own_search = hasattr(self.model, "matching")
        g.portal_search = search if own_search else None
        try:
            count, rows = super().get_list(
                page, sort_column, sort_desc, None if own_search else search, filters, execute, page_size
            )
        finally:
            g.pop("portal_search", None)
        if execute and request.endpoint and request.endpoint.endswith(".index_view") and self.audit_reads:
            audit(
                Action.SEARCH,
                self.model._meta.table_name,
                search=search or "",
                filters=[[f[1], f[2]] for f in (filters or [])],
                page=page or 0,
                ids=[r.get_id() for r in rows],
            )
        return count, rows

    audit_reads = True

    # Fields the model normalises itself (e.g. "+84 912 345 678" becomes 0912345678):
    # the form must not refuse them for their raw length or emptiness first.
    domain_fields = ()

    def scaffold_form(self):
        form_class = super().scaffold_form()
        for name in self.domain_fields:
            unbound = getattr(form_class, name, None)
            if unbound is not None:
                unbound.kwargs["validators"] = [validators.Optional()]
        return form_class

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                flt = self._filters[item["index"]]
                if getattr(flt, "options_per_request", False):
                    item["options"] = [(key, str(label)) for key, label in flt.options()]
        return groups

    def _create_ajax_loader(self, name, options):
        return ScopedAjaxLoader(name, getattr(self.model, name).rel_model, **options)

    def _scope_form(self, form):
        """Limit every foreign-key choice to the rows the account may see."""
        for field in form:
            query = getattr(field, "query", None)
            if query is not None and hasattr(query, "model"):
                field.query = scoped(query.model, query)
        return form

    def create_form(self, obj=None):
        return self._scope_form(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._scope_form(super().edit_form(obj))

    def after_save(self, form, model, is_created):
        """Write what belongs with the row, inside its transaction."""

    # Audit helpers
    def citizen_id_of(self, model):
        """The citizen a row belongs to, for the citizen's history; None if it is not personal data."""
        return getattr(model, "citizen_id", None)

    # Writes: one transaction each, domain errors shown on the field, every change audited.
    def _show_error(self, form, exc):
        if isinstance(exc, FieldError):
            label = self.column_labels.get(exc.field) or exc.field
            if exc.field in form and hasattr(form[exc.field], "errors"):
                errors = form[exc.field].errors
                if isinstance(errors, tuple):
                    form[exc.field].errors = list(errors)
                form[exc.field].errors.append(str(exc.message))
            flash(f"{label}: {exc.message}", "error")
            return
        if isinstance(exc, IntegrityError):
            match = UNIQUE_COLUMN.search(str(exc))
            if match:
                column = match.group(1) or match.group(2)
                label = self.column_labels.get(column) or column
                flash(_("%(field)s: another record already has this value.", field=label), "error")
            else:
                flash(_("The change conflicts with other records and was not saved."), "error")
            return
        log.exception("save failed in %s", type(self).__name__)
        flash(_("The change could not be saved; nothing was changed."), "error")

    def create_model(self, form):
        try:
            with db.atomic():
                model = self.model()
                form.populate_obj(model)
                self._on_model_change(form, model, True)
                model.save(force_insert=True)
                save_inline(form, model)
                self.after_save(form, model, True)
                audit(
                    Action.CREATE,
                    self.model._meta.table_name,
                    model.get_id(),
                    citizen_id=self.citizen_id_of(model),
                    changes=diff({}, snapshot(model)),
                )
        except Exception as exc:
            self._show_error(form, exc)
            return False
        self.after_model_change(form, model, True)
        return model

    def update_model(self, form, model):
        before = snapshot(model)
        try:
            with db.atomic():
                form.populate_obj(model)
                self._on_model_change(form, model, False)
                model.save()
                save_inline(form, model)
                self.after_save(form, model, False)
                changes = diff(before, snapshot(model))
                if changes:
                    audit(
                        Action.UPDATE,
                        self.model._meta.table_name,
                        model.get_id(),
                        citizen_id=self.citizen_id_of(model),
                        changes=changes,
                    )
        except Exception as exc:
            self._show_error(form, exc)
            return False
        self.after_model_change(form, model, False)
        return True

    def blocking_dependents(self, model):
        """Names and counts of rows that still point at model."""
        found = []
        for condition, fk in model.dependencies(search_nullable=True):
            count = fk.model.select().where(condition).count()
            if count:
                found.append(f"{fk.model._meta.table_name} ({count})")
        return found

    def delete_model(self, model):
        dependents = self.blocking_dependents(model)
        if dependents:
            flash(
                _("It cannot be deleted while other records refer to it: %(list)s.", list=", ".join(dependents)),
                "error",
            )
            return False
        try:
            with db.atomic():
                self.on_model_delete(model)
                audit(
                    Action.DELETE,
                    self.model._meta.table_name,
                    model.get_id(),
                    citizen_id=self.citizen_id_of(model),
                    deleted=snapshot(model),
                )
                model.delete_instance(recursive=False)
        except Exception as exc:
            self._show_error({}, exc)
            return False
        self.after_model_delete(model)
        return True

    @action(
        "delete",
        admin_lazy_gettext("Delete"),
        admin_lazy_gettext("Are you sure you want to delete selected records?"),
    )
    def action_delete(self, ids):
        if not self.can_delete:
            abort(403)
        pk = self.model._meta.primary_key
        count = 0
        for model in scoped(self.model, self.base_query()).where(pk.in_(clean_ids(ids))):
            if self.delete_model(model):
                count += 1
        if count:
            flash(_("%(count)s records were deleted.", count=count), "success")

    @expose("/export/<export_type>/")
    def export(self, export_type):
        if not self.can_export:
            abort(403)
        response = super().export(export_type)
        audit(Action.EXPORT, self.model._meta.table_name, format=export_type, query=request.query_string.decode())
        return response


class PortalIndexView(AdminIndexView):
    """The back office's home: only for signed-in staff."""

    def is_accessible(self):
        return current_user.is_authenticated and not current_user.must_change_password

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        return redirect(url_for("auth.change_password"))

    @expose("/")
    def index(self):
        from admin_views.reports import dashboard_context

        return self.render("admin/portal_index.html", scope=current_scope(), **dashboard_context())
