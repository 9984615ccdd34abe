"""Reports and line lists as files, the same from a page, a background job and the command line.

Files are always in Vietnamese (they go to meetings), whatever language the page is shown in.
Every file written is audited: who, which report, the filters and the number of rows.
"""

from flask_babel import force_locale
from flask_babel import gettext

from models.accounts import Scope
from models.audit import Action
from models.audit import AuditEvent
from models.base import utcnow
from models.places import Ward
from models.records import Vaccine
from models.units import HealthUnit
from reports.base import FILTER_LABELS
from reports.base import Filters
from reports.lines import LINE_LISTS
from services import export
from services.display import format_date
from services.display import format_datetime
from services.jobs import handler

FILE_LANGUAGE = "vi"
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def filter_values(filters):
    """(label, shown value) of every filter that is set: names rather than ids."""
    shown = []
    for name, raw in filters.as_strings().items():
        value = getattr(filters, name)
        if name in ("date_from", "date_to"):
            text = format_date(value)
        elif name == "ward":
            ward = Ward.get_or_none(Ward.code == value)
            text = ward.name if ward else raw
        elif name == "unit":
            unit = HealthUnit.get_or_none(HealthUnit.id == value)
            text = unit.name if unit else raw
        elif name == "vaccine":
            vaccine = Vaccine.get_or_none(Vaccine.id == value)
            text = vaccine.name if vaccine else raw
        else:
            text = raw
        shown.append((FILTER_LABELS[name], text))
    return shown


def describe(filters, scope, generated_at):
    """The line under a file's title: scope, filters and when it was made (in the current language)."""
    parts = [
        gettext("All communes")
        if scope.is_everything
        else gettext("%(n)s communes/wards in the jurisdiction", n=len(scope.ward_codes))
    ]
    parts += [f"{gettext(label)}: {value}" for label, value in filter_values(filters)]
    parts.append(gettext("Made %(when)s", when=format_datetime(generated_at)))
    return " · ".join(parts)


def file_name(name, fmt, generated_at):
    return f"{name}-{generated_at:%Y%m%d-%H%M}.{fmt}"


def write_report(report, frame, scope, filters, fmt, output, generated_at=None):
    """Write a report's DataFrame as csv or xlsx to output (a path or a binary file)."""
    generated_at = generated_at or utcnow()
    with force_locale(FILE_LANGUAGE):
        labels = {c.key: gettext(c.label) for c in report.columns}
        translated = [c.key for c in report.columns if c.kind == "label"]
        if translated:
            frame = frame.copy()
            for key in translated:
                frame[key] = frame[key].map(lambda value: gettext(value) if isinstance(value, str) and value else value)
        if fmt == "csv":
            data = export.report_csv(report.columns, labels, frame)
            if hasattr(output, "write"):
                output.write(data)
            else:
                with open(output, "wb") as handle:
                    handle.write(data)
            return
        title = gettext(report.title) if not report.saved else report.title
        export.report_xlsx(report.columns, labels, frame, title, describe(filters, scope, generated_at), output)


def audit_export(actor, name, filters, rows, fmt, source, address=None):
    """One audit event per file handed out."""
    return AuditEvent.record(
        Action.EXPORT,
        actor=actor,
        object_type="report",
        object_id=name,
        address=address,
        filters=filters.as_strings(),
        rows=rows,
        format=fmt,
        source=source,
    )


def line_list_header(line_list):
    with force_locale(FILE_LANGUAGE):
        return [gettext(label) for _key, label, _width in line_list.columns]


def line_list_csv_chunks(line_list, scope, filters, counter=None):
    """A line list as CSV bytes, streamed."""
    return export.csv_chunks(
        line_list_header(line_list), line_list.rows(scope, filters), counter=counter, cells=export.plain_cells
    )


def write_line_list(line_list, scope, filters, fmt, output, total=None, counter=None):
    """Write a line list to a path; return the rows written. TooManyRows when xlsx cannot hold it."""
    counter = counter if counter is not None else [0]
    if fmt == "xlsx":
        total = line_list.count(scope, filters) if total is None else total
        widths = [width for _key, _label, width in line_list.columns]
        return export.lines_xlsx(
            line_list_header(line_list), widths, line_list.rows(scope, filters), output, total, counter=counter
        )
    with open(output, "wb") as handle:
        for chunk in line_list_csv_chunks(line_list, scope, filters, counter=counter):
            handle.write(chunk)
    return counter[0]


def scope_params(scope):
    return None if scope.is_everything else sorted(scope.ward_codes)


def scope_from_params(value):
    return Scope(None if value is None else value)


class ExportRefused(Exception):
    """The export cannot be made; user_message says why, in the reader's words."""

    def __init__(self, user_message):
        super().__init__(user_message)
        self.user_message = user_message


@handler("export_lines")
def run_line_list_job(job, context):
    """A background line-list export: the file, its progress, and the audit event when done."""
    from models.accounts import Staff

    params = job.arguments
    line_list = LINE_LISTS[params["line_list"]]
    scope = scope_from_params(params.get("wards"))
    filters = Filters.from_mapping(params.get("filters") or {})
    fmt = params["format"]
    total = line_list.count(scope, filters)
    context.progress(0, total, force=True)
    if fmt == "xlsx" and total + 1 > export.XLSX_MAX_ROWS:
        with force_locale(FILE_LANGUAGE):
            raise ExportRefused(too_many_rows_message(total))
    counter = [0]
    path = context.result_path(f".{fmt}")

    def progressing():
        for done, row in enumerate(line_list.rows(scope, filters), start=1):
            yield row
            if done % 5000 == 0:
                context.progress(done, total)

    generated_at = utcnow()
    if fmt == "xlsx":
        widths = [width for _key, _label, width in line_list.columns]
        written = export.lines_xlsx(line_list_header(line_list), widths, progressing(), path, total, counter=counter)
    else:
        with open(path, "wb") as handle:
            for chunk in export.csv_chunks(
                line_list_header(line_list), progressing(), counter=counter, cells=export.plain_cells
            ):
                handle.write(chunk)
        written = counter[0]
    context.progress(written, total, force=True)
    owner = Staff.get_or_none(Staff.id == job.owner_id) if job.owner_id else None
    audit_export(owner, f"lines:{line_list.name}", filters, written, fmt, source="job")
    return path, file_name(line_list.name, fmt, generated_at)


def too_many_rows_message(total):
    return gettext(
        "%(n)s rows do not fit in an Excel sheet (at most 1,048,575 rows under the header). "
        "Download CSV instead, or narrow the filters.",
        n=f"{total:,}".replace(",", "."),
    )


@handler("refresh_dashboard")
def run_dashboard_refresh(job, context):
    """Recompute the dashboard's pre-aggregated figures."""
    from reports.dashboard import refresh

    refresh()
    return None, None
