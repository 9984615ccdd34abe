"""Report pages, downloads, line-list exports, background jobs and the report builder."""

import io
from pathlib import Path

from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import request
from flask import send_file
from flask import stream_with_context
from flask import url_for
from flask_admin import BaseView
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from admin_views.base import SignInFirst
from admin_views.jobs import own_job_or_404
from admin_views.jobs import runner_if_enabled
from admin_views.jobs import wake_worker_for
from admin_views.jobs import with_live_progress
from admin_views.scoping import allowed
from admin_views.scoping import current_scope
from models.base import utcnow
from models.jobs import Job
from models.jobs import JobStatus
from models.places import Ward
from models.records import Vaccine
from models.reporting import SavedReport
from models.units import HealthUnit
from models.validation import FieldError
from reports import all_reports
from reports import get_report
from reports.base import FILTER_LABELS
from reports.base import Filters
from reports.builder import DATASETS
from reports.builder import MEASURES
from reports.builder import run_definition
from reports.builder import save
from reports.builder import validate
from reports.charts import bar_chart
from reports.charts import report_chart
from reports.dashboard import figures
from reports.dashboard import is_stale
from reports.lines import LINE_LISTS
from services import export
from services import report_files
from services.display import format_date
from services.display import format_datetime
from services.jobs import enqueue

# A report page shows this many rows; the downloads have them all.
PAGE_ROWS = 500
# A streamed CSV line list beyond this many rows is better made as a background job.
DIRECT_LINE_LIMIT = 200_000


def check_csrf():
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        abort(400)


def filter_choices(scope):
    """Options of the filter drop-downs, limited to what the scope can see."""
    wards = Ward.select(Ward.code, Ward.name).order_by(Ward.name)
    if not scope.is_everything:
        wards = wards.where(Ward.code.in_(sorted(scope.ward_codes)))
    else:
        provinces = HealthUnit.select(HealthUnit.province).distinct()
        wards = wards.where(Ward.province.in_(provinces))
    return {
        "ward": [(str(code), name) for code, name in wards.tuples()],
        "unit": [(str(i), name) for i, name in HealthUnit.select(HealthUnit.id, HealthUnit.name).tuples()],
        "vaccine": [
            (str(i), name) for i, name in Vaccine.select(Vaccine.id, Vaccine.name).order_by(Vaccine.name).tuples()
        ],
        "disease": [(d, d) for d in sorted(disease_names())],
    }


def disease_names():
    """Diseases named by vaccines and by risk checklists."""
    from models.risk import Disease

    names = {d for (d,) in Vaccine.select(Vaccine.disease).distinct().tuples()}
    return names | {d for (d,) in Disease.select(Disease.name).tuples()}


def form_values(filters):
    """The filters as the form shows them and links carry them: dates as dd/mm/yyyy."""
    values = filters.as_strings()
    for name in ("date_from", "date_to"):
        if getattr(filters, name):
            values[name] = format_date(getattr(filters, name))
    return values


def read_filters(report, args):
    """(Filters, error message or None) from a query string."""
    try:
        return Filters.from_mapping(args, allowed=report.filters), None
    except FieldError as exc:
        label = _(FILTER_LABELS.get(exc.field, exc.field))
        return Filters(), f"{label}: {_(str(exc.message))}"


class ReportsView(SignInFirst, BaseView):
    """Every report a signed-in account may run, its downloads and the builder."""

    def is_accessible(self):
        return allowed("view", "report")

    def may_run(self, report):
        return all(allowed(action, resource) for action, resource in report.requires)

    def report_or_404(self, name):
        report = get_report(name)
        if report is None or not self.may_run(report):
            abort(404)
        return report

    @expose("/")
    def index(self):
        reports = [r for r in all_reports() if self.may_run(r)]
        return self.render(
            "admin/report_index.html",
            reports=reports,
            line_lists=LINE_LISTS.values() if allowed("export", "citizen") else (),
            can_build=allowed("create", "report"),
            can_export=allowed("export", "report"),
            jobs=Job.select().where(Job.owner == current_user.id).order_by(Job.id.desc()).limit(10),
        )

    @expose("/<report_name>/")
    def report_page(self, report_name):
        name = report_name
        report = self.report_or_404(name)
        filters, error = read_filters(report, request.args)
        if error:
            flash(error, "error")
        frame = report.run(current_scope(), filters)
        query = form_values(filters)
        return self.render(
            "admin/report_page.html",
            report=report,
            filters=filters,
            values=query,
            choices=filter_choices(current_scope()),
            rows=list(export.frame_rows(frame.head(PAGE_ROWS), report.columns)),
            total_rows=len(frame),
            page_rows=PAGE_ROWS,
            chart=report_chart(report, frame),
            can_export=allowed("export", "report"),
            query=query,
        )

    @expose("/<report_name>/download/<fmt>")
    def download(self, report_name, fmt):
        name = report_name
        report = self.report_or_404(name)
        if fmt not in report_files.FORMATS or not allowed("export", "report"):
            abort(404)
        filters, error = read_filters(report, request.args)
        if error:
            flash(error, "error")
            return redirect(self.get_url(".report_page", report_name=name))
        scope = current_scope()
        frame = report.run(scope, filters)
        generated_at = utcnow()
        buffer = io.BytesIO()
        try:
            report_files.write_report(report, frame, scope, filters, fmt, buffer, generated_at)
        except export.TooManyRows:
            flash(report_files.too_many_rows_message(len(frame)), "error")
            return redirect(self.get_url(".report_page", report_name=name, **form_values(filters)))
        report_files.audit_export(current_user, name, filters, len(frame), fmt, "page", address=request.remote_addr)
        buffer.seek(0)
        return send_file(
            buffer,
            mimetype=report_files.CONTENT_TYPES[fmt],
            as_attachment=True,
            download_name=report_files.file_name(name, fmt, generated_at),
        )

    # Line lists
    def line_list_or_404(self, name):
        line_list = LINE_LISTS.get(name)
        if line_list is None or not (allowed("export", "citizen") and allowed("export", "report")):
            abort(404)
        return line_list

    @expose("/lines/<list_name>/")
    def line_list_page(self, list_name):
        name = list_name
        line_list = self.line_list_or_404(name)
        filters, error = read_filters(line_list, request.args)
        if error:
            flash(error, "error")
        count = line_list.count(current_scope(), filters)
        return self.render(
            "admin/report_lines.html",
            line_list=line_list,
            filters=filters,
            values=form_values(filters),
            choices=filter_choices(current_scope()),
            count=count,
            direct_limit=DIRECT_LINE_LIMIT,
            xlsx_limit=export.XLSX_MAX_ROWS - 1,
        )

    @expose("/lines/<list_name>/csv")
    def line_list_csv(self, list_name):
        name = list_name
        """The whole line list as CSV, streamed from the database in constant memory."""
        line_list = self.line_list_or_404(name)
        filters, error = read_filters(line_list, request.args)
        if error:
            abort(400)
        scope = current_scope()
        rows = line_list.count(scope, filters)
        report_files.audit_export(
            current_user, f"lines:{name}", filters, rows, "csv", "stream", address=request.remote_addr
        )
        chunks = report_files.line_list_csv_chunks(line_list, scope, filters)
        response = Response(stream_with_context(chunks), mimetype=report_files.CONTENT_TYPES["csv"])
        download_name = report_files.file_name(name, "csv", utcnow())
        response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
        return response

    @expose("/lines/<list_name>/job", methods=["POST"])
    def line_list_job(self, list_name):
        name = list_name
        """Make the line list in the background; the job page shows progress and the download."""
        line_list = self.line_list_or_404(name)
        check_csrf()
        fmt = request.form.get("format")
        if fmt not in report_files.FORMATS:
            abort(400)
        filters, error = read_filters(line_list, request.form)
        if error:
            flash(error, "error")
            return redirect(self.get_url(".line_list_page", list_name=name))
        scope = current_scope()
        if fmt == "xlsx":
            count = line_list.count(scope, filters)
            if count + 1 > export.XLSX_MAX_ROWS:
                flash(report_files.too_many_rows_message(count), "error")
                return redirect(self.get_url(".line_list_page", list_name=name, **form_values(filters)))
        params = {
            "line_list": name,
            "format": fmt,
            "filters": filters.as_strings(),
            "wards": report_files.scope_params(scope),
        }
        job = enqueue("export_lines", params, owner=current_user.id, runner=runner_if_enabled())
        return redirect(self.get_url(".job_page", job_id=job.id))

    # Jobs
    @expose("/jobs/<int:job_id>/")
    def job_page(self, job_id):
        job = with_live_progress(own_job_or_404(job_id))
        wake_worker_for(job)
        return self.render("admin/job_page.html", job=job, statuses=JobStatus, format_datetime=format_datetime)

    @expose("/jobs/<int:job_id>/download")
    def job_download(self, job_id):
        job = own_job_or_404(job_id)
        if job.status != JobStatus.DONE or not job.result_path or not Path(job.result_path).exists():
            abort(404)
        fmt = Path(job.result_path).suffix.lstrip(".")
        return send_file(
            job.result_path,
            mimetype=report_files.CONTENT_TYPES.get(fmt, "application/octet-stream"),
            as_attachment=True,
            download_name=job.result_name or Path(job.result_path).name,
        )

    # Builder
    @expose("/builder/", methods=["GET", "POST"])
    def builder(self):
        if not allowed("create", "report"):
            abort(403)
        source = request.form if request.method == "POST" else request.args
        dataset_key = source.get("dataset")
        if dataset_key not in DATASETS:
            existing = SavedReport.get_or_none(SavedReport.name == request.args.get("name", ""))
            if existing is None:
                return self.render("admin/report_builder.html", datasets=DATASETS, dataset=None, form={})
            source = {
                "name": existing.name,
                "title": existing.title,
                **{f"group_{k}": "1" for k in existing.definition["group_by"]},
                **{f"measure_{k}": "1" for k in existing.definition["measures"]},
                **existing.definition["filters"],
            }
            dataset_key = existing.dataset
        dataset = DATASETS[dataset_key]
        form = {key: source.get(key, "") for key in source}
        preview = None
        if request.method == "POST":
            check_csrf()
            group_by = [g.key for g in dataset.groups if request.form.get(f"group_{g.key}")]
            measures = [m for m in MEASURES if request.form.get(f"measure_{m}")]
            filters = {k: request.form.get(k, "") for k in dataset.filters}
            try:
                definition = validate(
                    request.form.get("name"), request.form.get("title"), dataset_key, group_by, measures, filters
                )
            except FieldError as exc:
                flash(f"{_(str(FIELD_NAMES.get(exc.field, exc.field)))}: {_(str(exc.message))}", "error")
                definition = None
            if definition and request.form.get("action") == "save":
                existing = SavedReport.get_or_none(SavedReport.name == definition["name"])
                if (
                    existing is not None
                    and existing.owner_id not in (None, current_user.id)
                    and not allowed("delete", "report")
                ):
                    abort(403)
                save(definition, owner=current_user.id)
                flash(_("The report %(title)s was saved.", title=definition["title"]), "success")
                return redirect(self.get_url(".report_page", report_name=definition["name"]))
            if definition:
                from reports.builder import columns_of

                frame = run_definition(definition, current_scope(), Filters())
                columns = columns_of(definition)
                preview = {
                    "columns": [(c.key, c.label, c.kind) for c in columns],
                    "rows": list(export.frame_rows(frame.head(50), columns)),
                    "total": len(frame),
                }
        return self.render(
            "admin/report_builder.html",
            datasets=DATASETS,
            dataset=dataset,
            measures=MEASURES,
            form=form,
            preview=preview,
            choices=filter_choices(current_scope()),
        )

    @expose("/builder/<report_name>/delete", methods=["POST"])
    def builder_delete(self, report_name):
        name = report_name
        check_csrf()
        saved = SavedReport.get_or_none(SavedReport.name == name)
        if saved is None or not allowed("delete", "report"):
            abort(404)
        saved.delete_instance()
        flash(_("The report %(title)s was deleted.", title=saved.title), "success")
        return redirect(self.get_url(".index"))

    # Dashboard
    @expose("/dashboard/refresh", methods=["POST"])
    def refresh_dashboard(self):
        check_csrf()
        request_dashboard_refresh(runner_if_enabled())
        flash(_("The figures are being recomputed; reload the page in a moment."), "info")
        return redirect(url_for("admin.index"))


FIELD_NAMES = {
    "name": _l("Name"),
    "title": _l("Title"),
    "dataset": _l("Dataset"),
    "group_by": _l("Group by"),
    "measures": _l("Measures"),
    **FILTER_LABELS,
}


def request_dashboard_refresh(runner):
    """Queue a refresh of the dashboard's figures unless one is already waiting or running."""
    waiting = Job.select().where(
        (Job.kind == "refresh_dashboard") & Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
    )
    if waiting.exists():
        return None
    return enqueue("refresh_dashboard", {}, runner=runner)


def dashboard_context():
    """What the back office's home shows: the scope's figures and charts, refreshed when stale."""
    if not allowed("view", "report"):
        return {"dashboard": None}
    vaccine_id = request.args.get("vaccine", "")
    data = figures(current_scope(), int(vaccine_id) if vaccine_id.isdigit() and len(vaccine_id) < 10 else None)
    runner = current_app.extensions.get("jobs") if current_app.config.get("JOBS_WORKER", True) else None
    refreshing = False
    if is_stale(data["refreshed"]):
        refreshing = request_dashboard_refresh(runner) is not None or True
    return {
        "dashboard": data,
        "refreshing": refreshing,
        "coverage_chart": bar_chart(data["coverage"], percent=True),
        "completeness_chart": bar_chart(data["completeness"], percent=True),
        "declarations_chart": bar_chart(data["declarations"]) if data["declarations"] else None,
        "format_datetime": format_datetime,
    }
