"""Files leaders take to meetings: XLSX and CSV (UTF-8 with BOM), safe to open in Excel.

Every text cell that Excel would read as a formula (=, +, -, @, tab, carriage return first) is
prefixed with an apostrophe. Labels come in already translated; numbers stay numbers.
"""

import csv
import datetime
import io

from openpyxl import Workbook
from openpyxl.styles import Alignment
from openpyxl.styles import Font
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter

from services.display import format_date
from services.display import format_datetime

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_STARTS)
# Excel's sheet limit; one row is the header.
XLSX_MAX_ROWS = 1_048_576
CSV_CHUNK_ROWS = 2_000
NUMBER_FORMATS = {"int": "#,##0", "float": "#,##0.00", "percent": "0.00%"}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
MAX_COLUMN_WIDTH = 60


class TooManyRows(Exception):
    """The rows do not fit in one XLSX sheet."""


def escape_cell(value):
    """A text that Excel will show as text, never run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell_value(value):
    """A Python value as a CSV or XLSX cell: dates as dd/mm/yyyy, text escaped, None empty."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return format_datetime(value)
    if isinstance(value, datetime.date):
        return format_date(value)
    if isinstance(value, str):
        return escape_cell(value)
    if hasattr(value, "item"):  # numpy scalars from a DataFrame
        return value.item()
    return value


def plain_cells(row):
    """A row of text, whole numbers and None (a line list's) as CSV cells, text escaped.

    The same as cell_value on each value, for the types a line list holds, at a fraction of the
    cost: a million rows go through here.
    """
    return [
        ("'" + v if v and v[0] in FORMULA_FIRST else v) if v.__class__ is str else ("" if v is None else v) for v in row
    ]


def csv_chunks(header, rows, convert=cell_value, chunk_rows=CSV_CHUNK_ROWS, counter=None, cells=None):
    """UTF-8 bytes of a CSV with a BOM, a few thousand rows at a time (constant memory).

    convert turns each value into a cell, or cells (when given) turns a whole row into its cells.
    counter: a list whose first item is incremented per row, so a caller can report progress.
    """
    if cells is None:
        cells = lambda row: [convert(v) for v in row]  # noqa: E731
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([escape_cell(h) for h in header])
    pending = 0
    for row in rows:
        writer.writerow(cells(row))
        pending += 1
        if pending >= chunk_rows:
            if counter is not None:
                counter[0] += pending
            pending = 0
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate(0)
    if counter is not None:
        counter[0] += pending
    yield buffer.getvalue().encode("utf-8")


def frame_rows(frame, columns):
    """Rows of a DataFrame in the order of columns, as plain Python values."""
    keys = [c.key for c in columns]
    for record in frame[keys].itertuples(index=False, name=None):
        yield tuple(None if _is_missing(v) else v for v in record)


def _is_missing(value):
    try:
        return value != value  # NaN
    except (TypeError, ValueError):
        return False


def report_csv(columns, labels, frame):
    """A report's table as CSV bytes: one header row of labels, then the rows."""
    return b"".join(csv_chunks([labels[c.key] for c in columns], frame_rows(frame, columns)))


def report_xlsx(columns, labels, frame, title, subtitle, output):
    """A report's table as an XLSX workbook written to output (a path or a binary file).

    Row 1 is the title, row 2 says the filters and when it was made, row 4 the header (frozen).
    Percent columns (0-100 in the DataFrame) are stored as fractions with a percent format.
    """
    if len(frame) + 4 > XLSX_MAX_ROWS:
        raise TooManyRows(len(frame))
    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(title)
    sheet.cell(row=1, column=1, value=escape_cell(title)).font = Font(bold=True, size=14)
    sheet.cell(row=2, column=1, value=escape_cell(subtitle)).font = Font(italic=True)
    header_row = 4
    widths = []
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=header_row, column=index, value=escape_cell(labels[column.key]))
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        widths.append(min(MAX_COLUMN_WIDTH, max(8, len(labels[column.key]) // 2 + 2)))
    for offset, row in enumerate(frame_rows(frame, columns), start=1):
        for index, (column, value) in enumerate(zip(columns, row, strict=True), start=1):
            value = cell_value(value)
            if column.kind == "percent" and isinstance(value, int | float):
                value = value / 100.0
            cell = sheet.cell(row=header_row + offset, column=index, value=value)
            if column.kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[column.kind]
            shown = len(str(value)) + (3 if column.kind in NUMBER_FORMATS else 0)
            widths[index - 1] = min(MAX_COLUMN_WIDTH, max(widths[index - 1], shown + 2))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    if len(frame):
        last = get_column_letter(len(columns))
        sheet.auto_filter.ref = f"A{header_row}:{last}{header_row + len(frame)}"
    book.save(output)


def lines_xlsx(header, widths, rows, output, total, convert=cell_value, counter=None):
    """A line list as an XLSX written row by row (openpyxl's write-only mode), header frozen.

    total: the number of rows, checked against Excel's limit before anything is written.
    """
    if total + 1 > XLSX_MAX_ROWS:
        raise TooManyRows(total)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([escape_cell(h) for h in header])
    written = 0
    for row in rows:
        sheet.append([convert(v) for v in row])
        written += 1
        if counter is not None and written % CSV_CHUNK_ROWS == 0:
            counter[0] = written
    if counter is not None:
        counter[0] = written
    book.save(output)
    return written


def _sheet_title(title):
    cleaned = "".join(ch for ch in str(title) if ch not in "[]:*?/\\")
    return (cleaned or "Report")[:31]
