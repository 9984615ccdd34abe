"""Report pages, the dashboard and the report builder through the back office."""

import io
import re

import pytest
from openpyxl import load_workbook

from models.audit import Action
from models.audit import AuditEvent
from models.jobs import Job
from models.reporting import DashboardRefresh
from models.reporting import SavedReport
from reports.dashboard import refresh
from services.jobs import run_one
from tests.helpers import csrf_from
from tests.helpers import sign_in
from tests.reports_world import build_world

world_fixture = pytest.fixture(name="world")(build_world)


def cells(html):
    """The text of every table cell on a page."""
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_a_leader_sees_every_report_and_a_station_not_activity(world, client):
    sign_in(client, "leader")
    page = client.get("/admin/reports/").text
    for name in ("coverage", "completeness", "activity", "declarations"):
        assert f"/admin/reports/{name}/" in page
    client.delete_cookie("session")
    sign_in(client, "station")
    page = client.get("/admin/reports/").text
    assert "/admin/reports/coverage/" in page and "/admin/reports/activity/" not in page


def test_the_coverage_page_shows_the_table_and_chart_of_the_scope_only(world, client):
    w0, w1, w2 = world["wards"]
    sign_in(client, "station")
    page = client.get("/admin/reports/coverage/").text
    shown = cells(page)
    assert str(w0) in shown and str(w1) not in shown and str(w2) not in shown
    assert "66,67%" in shown and "33,33%" in shown  # An and Bình of 3 residents; An's second dose
    assert "<svg" in page and "66.7%" in page
    assert "/admin/reports/coverage/download/xlsx" in page


def test_filters_on_the_page_narrow_the_table_and_bad_ones_are_named(world, client):
    sign_in(client, "leader")
    w0, w1, w2 = world["wards"]
    page = client.get(f"/admin/reports/coverage/?ward={w1}&date_from=01/01/2024").text
    shown = cells(page)
    assert str(w1) in shown and str(w0) not in shown
    # Dũng's measles dose was in December 2023: only his COVID-19 dose is left.
    assert "Vắc xin COVID-19" in shown and "Vắc xin sởi" not in shown
    bad = client.get("/admin/reports/coverage/?date_from=31/02/2024", follow_redirects=True)
    assert bad.status_code == 200 and "dd/mm/yyyy" in bad.text


def test_the_dashboard_reads_the_refreshed_figures_of_the_scope(world, client):
    refresh()
    sign_in(client, "station")
    page = client.get("/admin/").text
    assert DashboardRefresh.latest() is not None
    # The station's commune: 3 residents, 3 measles doses, one complete record.
    assert "Số liệu tính đến" in page
    figures = re.findall(r'<div class="h4">([^<]+)</div>', page)
    assert figures == ["3", "1", "3", "1"]
    assert page.count("<svg") >= 2
    sign_in_leader = client
    sign_in_leader.delete_cookie("session")
    sign_in(sign_in_leader, "leader")
    assert re.findall(r'<div class="h4">([^<]+)</div>', client.get("/admin/").text) == ["6", "3", "6", "3"]


def test_stale_figures_are_refreshed_by_a_background_job(world, client, tmp_path):
    sign_in(client, "leader")
    assert "Số liệu chưa được tính" in client.get("/admin/").text
    client.get("/admin/")  # a second visit does not queue a second refresh
    assert Job.select().where(Job.kind == "refresh_dashboard").count() == 1
    job = run_one(tmp_path, app=client.application)
    assert job.status == "done"
    assert re.findall(r'<div class="h4">([^<]+)</div>', client.get("/admin/").text)[0] == "6"


def test_a_saved_builder_report_works_as_page_download_and_cli(world, client, app, tmp_path):
    w0, w1, w2 = world["wards"]
    sign_in(client, "leader")
    form = client.get("/admin/reports/builder/?dataset=vaccinations").text
    token = csrf_from(form)
    data = {
        "csrf_token": token,
        "dataset": "vaccinations",
        "name": "mui-theo-xa",
        "title": "Mũi tiêm theo xã",
        "group_commune": "1",
        "group_vaccine": "1",
        "measure_count": "1",
        "measure_distinct": "1",
        "measure_share": "1",
        "action": "preview",
    }
    preview = client.post("/admin/reports/builder/", data=data)
    assert preview.status_code == 200
    assert not SavedReport.select().exists()
    # Six doses: w0 measles 3 (An twice, Bình), w1 measles 1 and COVID-19 1, w2 measles 1.
    assert "Tổng cộng 4 dòng." in preview.text
    saved = client.post("/admin/reports/builder/", data={**data, "action": "save"})
    assert saved.status_code == 302 and saved.location.endswith("/admin/reports/mui-theo-xa/")
    page = client.get("/admin/reports/mui-theo-xa/").text
    assert "Mũi tiêm theo xã" in page
    shown = cells(page)
    row = shown[shown.index(str(w0)) : shown.index(str(w0)) + 6]
    assert row[2:] == ["Vắc xin sởi", "3", "2", "50,00%"]
    download = client.get("/admin/reports/mui-theo-xa/download/xlsx")
    sheet = load_workbook(io.BytesIO(download.data)).active
    assert sheet["A1"].value == "Mũi tiêm theo xã"
    assert [c.value for c in sheet[4]] == ["Mã xã", "Xã/phường", "Vắc xin", "Số lượng", "Số người (không trùng)",
                                           "Tỷ lệ trên tổng (phần trăm)"]  # fmt: skip
    assert sum(row[3].value for row in sheet.iter_rows(min_row=5)) == 6
    out = tmp_path / "saved.csv"
    result = app.test_cli_runner().invoke(
        args=["export-report", "mui-theo-xa", "--format", "csv", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") and "4 rows" in result.output
    # A station that opens the saved report sees its own commune only.
    client.delete_cookie("session")
    sign_in(client, "station")
    station_cells = cells(client.get("/admin/reports/mui-theo-xa/").text)
    assert str(w0) in station_cells and str(w1) not in station_cells and str(w2) not in station_cells
    exports = AuditEvent.select().where((AuditEvent.action == Action.EXPORT) & (AuditEvent.object_id == "mui-theo-xa"))
    assert exports.count() == 2


def test_the_builder_refuses_a_station_and_bad_definitions(world, client):
    sign_in(client, "station")
    assert client.get("/admin/reports/builder/").status_code == 403
    client.delete_cookie("session")
    sign_in(client, "leader")
    token = csrf_from(client.get("/admin/reports/builder/?dataset=citizens").text)
    base = {"csrf_token": token, "dataset": "citizens", "title": "X", "group_gender": "1", "measure_count": "1"}
    for name in ("coverage", "jobs", "Có dấu", "a"):
        response = client.post("/admin/reports/builder/", data={**base, "name": name, "action": "save"})
        assert response.status_code == 200, name
    assert not SavedReport.select().exists()
    no_token = client.post(
        "/admin/reports/builder/", data={**base, "csrf_token": "x", "name": "ok-name", "action": "save"}
    )
    assert no_token.status_code == 400 and not SavedReport.select().exists()
