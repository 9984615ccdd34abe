"""Downloads: XLSX read back with openpyxl, CSV with a BOM, formula escaping, the CLI, streaming."""

import csv
import datetime
import io
import tracemalloc

import pytest
from openpyxl import load_workbook

from models.accounts import Scope
from models.audit import Action
from models.audit import AuditEvent
from models.citizens import Citizen
from reports import get_report
from reports.base import Filters
from reports.lines import CITIZENS
from services import export
from services import report_files
from tests.factories import make_citizen
from tests.helpers import sign_in
from tests.reports_world import build_world

world_fixture = pytest.fixture(name="world")(build_world)


def read_csv(data):
    assert data.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+84912", "'+84912"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        (-5, -5),
        ("", ""),
    ],
)
def test_cells_excel_would_run_are_escaped(value, escaped):
    assert export.escape_cell(value) == escaped


def test_the_coverage_xlsx_has_title_filters_headers_and_numbers(world, app, tmp_path):
    w0, _w1, _w2 = world["wards"]
    report = get_report("coverage")
    filters = Filters(ward=w0, date_from=datetime.date(2024, 1, 1))
    frame = report.run(Scope.everything(), filters)
    path = tmp_path / "coverage.xlsx"
    made = datetime.datetime(2025, 3, 1, 2, 30)  # 09:30 in Vietnam
    with app.app_context():
        report_files.write_report(report, frame, Scope.everything(), filters, "xlsx", path, made)
    sheet = load_workbook(path).active
    assert sheet["A1"].value == "Độ bao phủ tiêm chủng"
    subtitle = sheet["A2"].value
    assert "01/03/2025 09:30" in subtitle and "01/01/2024" in subtitle
    assert sheet["A4"].value == "Mã xã"
    headers = [c.value for c in sheet[4]]
    assert headers[2] == "Vắc xin" and headers[-1] == "Tỷ lệ bao phủ (phần trăm dân số)"
    assert sheet.freeze_panes == "A5"
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=5)]
    # w0 since 1 January 2024: measles dose 1 (An, Bình) and dose 2 (An), 3 residents.
    assert [(r[2], r[4], r[5], r[6]) for r in values] == [("Vắc xin sởi", 1, 2, 3), ("Vắc xin sởi", 2, 1, 3)]
    assert values[0][7] == pytest.approx(0.6667) and sheet.cell(row=5, column=8).number_format == "0.00%"
    assert sheet.cell(row=5, column=6).number_format == "#,##0"
    assert sheet.column_dimensions["B"].width >= len(values[0][1])


def test_the_csv_has_a_bom_vietnamese_headers_and_escaped_text(world, app):
    w0, _w1, _w2 = world["wards"]
    world["people"]["an"].full_name = "=cmd|' /C calc'!A0"
    world["people"]["an"].save()
    with app.app_context():
        out = io.BytesIO()
        frame = CITIZENS_FRAME(w0)
        report_files.write_report(get_report("completeness"), frame, Scope.everything(), Filters(), "csv", out)
    rows = read_csv(out.getvalue())
    assert rows[0][:3] == ["Mã xã", "Xã/phường", "Dân số"]
    with app.app_context():
        chunks = b"".join(report_files.line_list_csv_chunks(CITIZENS, Scope.everything(), Filters(ward=w0)))
    lines = read_csv(chunks)
    assert lines[0][1] == "Họ và tên"
    names = sorted(row[1] for row in lines[1:])
    assert names == sorted(["'=cmd|' /C calc'!A0", "Trần Thị Bình", "Lê Thị Chi"])


def CITIZENS_FRAME(ward):
    return get_report("completeness").run(Scope.everything(), Filters(ward=ward))


def test_a_page_download_is_scoped_and_audited(world, client):
    w0, _w1, _w2 = world["wards"]
    sign_in(client, "station")
    response = client.get("/admin/reports/coverage/download/xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert {row[0].value for row in sheet.iter_rows(min_row=5)} == {w0}
    event = AuditEvent.select().where(AuditEvent.action == Action.EXPORT).order_by(AuditEvent.id.desc()).first()
    assert event.actor == "station" and event.object_id == "coverage"
    assert event.details["rows"] == 2 and event.details["format"] == "xlsx"
    csv_response = client.get("/admin/reports/completeness/download/csv?ward=" + str(w0))
    assert read_csv(csv_response.data)[1][0] == str(w0)
    latest = AuditEvent.select().where(AuditEvent.action == Action.EXPORT).order_by(AuditEvent.id.desc()).first()
    assert latest.details["filters"] == {"ward": str(w0)} and latest.details["rows"] == 1


def test_a_clerk_may_not_download_and_a_station_may_not_run_activity(world, client):
    sign_in(client, "clerk")
    assert client.get("/admin/reports/coverage/download/csv").status_code == 403
    client.post("/admin/logout/")
    client.delete_cookie("session")
    sign_in(client, "station")
    assert client.get("/admin/reports/activity/").status_code == 404
    assert client.get("/admin/reports/activity/download/csv").status_code == 404


def test_the_cli_writes_the_same_files(world, app, tmp_path):
    w0, w1, _w2 = world["wards"]
    runner = app.test_cli_runner()
    out = tmp_path / "coverage.xlsx"
    result = runner.invoke(args=["export-report", "coverage", "--format", "xlsx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 rows" in result.output
    sheet = load_workbook(out).active
    assert sheet["A1"].value == "Độ bao phủ tiêm chủng"
    assert len(list(sheet.iter_rows(min_row=5))) == 5
    csv_out = tmp_path / "completeness.csv"
    result = runner.invoke(
        args=["export-report", "completeness", "--format", "csv", "--output", str(csv_out), "--commune", str(w1)]
    )
    assert result.exit_code == 0, result.output
    rows = read_csv(csv_out.read_bytes())
    assert [r[0] for r in rows[1:]] == [str(w1)]
    event = AuditEvent.select().where(AuditEvent.action == Action.EXPORT).order_by(AuditEvent.id.desc()).first()
    assert event.details["source"] == "cli" and event.details["rows"] == 1
    bad = runner.invoke(args=["export-report", "nope", "--format", "csv", "--output", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "nope" in bad.output


def test_the_citizens_line_list_streams_in_constant_memory(app):
    from tests.factories import wards_of

    ward = wards_of(n=1)[0]
    make_citizen(ward, "Mẫu")  # one real row so the bulk rows below copy a valid shape
    rows = [
        {"full_name": f"Nguyễn Văn {i}", "ward": ward, "health_code": f"HC{i:010d}", "phone": "0912345678"}
        for i in range(30_000)
    ]
    with Citizen._meta.database.atomic():
        for start in range(0, len(rows), 1000):
            Citizen.insert_many(rows[start : start + 1000]).execute()

    def peak_while_streaming(limit):
        tracemalloc.start()
        total = 0
        lines = 0
        for chunk in report_files.line_list_csv_chunks(CITIZENS, Scope.everything(), Filters()):
            total += len(chunk)
            lines += chunk.count(b"\r\n")
            if lines >= limit:
                break
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, lines, total

    small_peak, _small_lines, _ = peak_while_streaming(5_000)
    big_peak, big_lines, _ = peak_while_streaming(10**9)
    assert big_lines == 30_001 + 1  # header, the sample row and 30,000
    # Six times the rows, about the same memory: pages and chunks, never the whole table.
    assert big_peak < small_peak * 1.5 + 256 * 1024, (small_peak, big_peak)


def test_line_list_cells_are_escaped_like_every_other_cell():
    row = ("=HYPERLINK(1)", "+84912345678", "-5", "@SUM(A1)", "\tx", "\rx", "Nguyễn Văn An", "", None, 6652, 0)
    assert export.plain_cells(row) == [export.cell_value(v) for v in row]
    assert export.plain_cells(row)[:4] == ["'=HYPERLINK(1)", "'+84912345678", "'-5", "'@SUM(A1)"]
