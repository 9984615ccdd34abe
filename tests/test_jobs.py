"""Background jobs: progress, survival of the page and of the worker, and the line-list exports they make."""

import csv
import datetime
import io
import threading

import pytest
from openpyxl import load_workbook

from models.audit import Action
from models.audit import AuditEvent
from models.base import utcnow
from models.jobs import STALE_AFTER
from models.jobs import Job
from models.jobs import JobStatus
from services import export
from services import jobs
from services.jobs import Runner
from services.jobs import handler
from services.jobs import run_one
from tests.helpers import csrf_from
from tests.helpers import sign_in
from tests.reports_world import build_world

world_fixture = pytest.fixture(name="world")(build_world)
T0 = datetime.datetime(2026, 1, 5, 3, 0)


@pytest.fixture
def steps_handler():
    """A job kind that reports three steps and records the progress the table held at each."""
    seen = []
    finished = threading.Event()

    @handler("test_steps")
    def steps(job, context):
        for step in range(1, 4):
            context.progress(step, 3, force=True)
            stored = Job.get_by_id(job.id)
            seen.append((stored.status, stored.progress, stored.total, stored.percent))
        finished.set()
        return None, None, "three steps"

    yield seen, finished
    jobs.HANDLERS.pop("test_steps", None)


def test_a_job_reports_its_progress_as_it_runs(app, steps_handler, tmp_path):
    seen, _finished = steps_handler
    job = Job.enqueue("test_steps", {"n": 3})
    assert job.status == JobStatus.QUEUED and job.percent is None
    assert run_one(tmp_path, now=T0).id == job.id
    assert seen == [("running", 1, 3, 33), ("running", 2, 3, 66), ("running", 3, 3, 100)]
    done = Job.get_by_id(job.id)
    assert done.status == JobStatus.DONE and done.message == "three steps" and done.finished_at is not None
    assert run_one(tmp_path, app=app) is None  # nothing left


def test_a_job_whose_worker_died_is_taken_over_later(app, steps_handler, tmp_path):
    job = Job.enqueue("test_steps")
    claimed = Job.claim_next(now=T0)  # a worker takes it, then its process dies
    assert claimed.id == job.id and claimed.status == JobStatus.RUNNING
    assert run_one(tmp_path, now=T0 + STALE_AFTER / 2) is None  # still presumed alive
    taken_over = run_one(tmp_path, now=T0 + STALE_AFTER + datetime.timedelta(seconds=1))
    assert taken_over.id == job.id
    finished = Job.get_by_id(job.id)
    assert finished.status == JobStatus.DONE and finished.attempts == 2


def test_a_failing_job_is_marked_failed_with_its_reason(app, tmp_path):
    @handler("test_broken")
    def broken(job, context):
        raise RuntimeError("disk full")

    try:
        job = Job.enqueue("test_broken")
        run_one(tmp_path, app=app)
    finally:
        jobs.HANDLERS.pop("test_broken", None)
    failed = Job.get_by_id(job.id)
    assert failed.status == JobStatus.FAILED and "disk full" in failed.message


def test_the_worker_thread_runs_a_job_nobody_waits_for(app, steps_handler, tmp_path):
    _seen, finished = steps_handler
    runner = Runner(app, tmp_path, poll_seconds=30)
    job = jobs.enqueue("test_steps", {}, runner=runner)
    try:
        assert finished.wait(timeout=30), "the worker did not run the job"
    finally:
        runner.stop()
    assert Job.get_by_id(job.id).status == JobStatus.DONE


def start_export(client, fmt, **filters):
    page = client.get("/admin/reports/lines/citizens/")
    assert page.status_code == 200
    return client.post(
        "/admin/reports/lines/citizens/job",
        data={"csrf_token": csrf_from(page.text), "format": fmt, **filters},
    )


def test_a_line_list_export_runs_in_the_background_scoped_and_audited(world, client, app, tmp_path):
    w0, _w1, _w2 = world["wards"]
    sign_in(client, "station")
    response = start_export(client, "csv")
    assert response.status_code == 302
    job_url = response.location
    waiting = client.get(job_url).text
    assert 'http-equiv="refresh"' in waiting and "<progress" in waiting
    # The page is closed: the job is run by the worker without any request.
    job = run_one(tmp_path, app=app)
    assert job.status == JobStatus.DONE and job.progress == 3 and job.total == 3
    done_page = client.get(job_url).text
    assert 'http-equiv="refresh"' not in done_page and "/download" in done_page
    download = client.get(job_url + "download")
    data = download.data
    download.close()
    assert download.status_code == 200
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "Mã Y tế cá nhân" and len(rows) == 4
    assert {r[7] for r in rows[1:]} == {str(w0)}
    event = AuditEvent.select().where(AuditEvent.action == Action.EXPORT).order_by(AuditEvent.id.desc()).first()
    assert (event.actor, event.object_id, event.details["rows"]) == ("station", "lines:citizens", 3)
    # Another account cannot open or download it.
    client.delete_cookie("session")
    sign_in(client, "leader")
    assert client.get(job_url).status_code == 404
    assert client.get(job_url + "download").status_code == 404


def test_an_xlsx_line_list_has_its_header_and_rows(world, client, app, tmp_path):
    sign_in(client, "leader")
    start_export(client, "xlsx", ward=str(world["wards"][1]))
    job = run_one(tmp_path, app=app)
    assert job.status == JobStatus.DONE, job.message
    sheet = load_workbook(job.result_path).active
    assert sheet["B1"].value == "Họ và tên" and sheet.freeze_panes == "A2"
    assert sorted(r[1].value for r in sheet.iter_rows(min_row=2)) == ["Hoàng Thị Em", "Phạm Văn Dũng"]


def test_xlsx_beyond_the_sheet_limit_is_refused_with_a_clear_message(world, client, app, monkeypatch, tmp_path):
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 5)  # 4 rows under the header; the leader sees 6
    sign_in(client, "leader")
    response = start_export(client, "xlsx")
    assert response.status_code == 302 and "/job" not in response.location
    page = client.get(response.location).text
    assert "không vừa một trang tính Excel" in page
    assert not Job.select().exists()
    # A job queued before the limit was known fails with the same message rather than a broken file.
    Job.enqueue("export_lines", {"line_list": "citizens", "format": "xlsx", "filters": {}, "wards": None})
    failed = run_one(tmp_path, app=app)
    assert failed.status == JobStatus.FAILED and "6 dòng" in failed.message


def test_finished_jobs_and_their_files_go_after_a_week_once_an_hour(app, tmp_path):
    # Today, not a fixed date: the runner's own purge below measures the week from the real clock.
    now = utcnow()
    old_file, new_file = tmp_path / "old.csv", tmp_path / "new.csv"
    old_file.write_text("personal data")
    new_file.write_text("personal data")
    old = Job.enqueue("export_lines", {})
    new = Job.enqueue("export_lines", {})
    running = Job.enqueue("export_lines", {})
    Job.update(status=JobStatus.DONE, finished_at=now - datetime.timedelta(days=8), result_path=str(old_file)).where(
        Job.id == old.id
    ).execute()
    Job.update(status=JobStatus.DONE, finished_at=now - datetime.timedelta(days=1), result_path=str(new_file)).where(
        Job.id == new.id
    ).execute()
    assert jobs.purge_finished(jobs.KEEP_FINISHED, now=now) == 1
    assert not old_file.exists() and new_file.exists()
    assert {j.id for j in Job.select()} == {new.id, running.id}

    runner = Runner(app, tmp_path)
    ticks = iter([1000.0, 1000.0 + 60, 1000.0 + 3601])
    assert runner.purge_if_due(clock=lambda: next(ticks)) == 0  # first idle moment: purges
    assert runner.purge_if_due(clock=lambda: next(ticks)) is None  # a minute later: not yet
    assert runner.purge_if_due(clock=lambda: next(ticks)) == 0  # an hour later: again


def test_a_job_working_in_one_transaction_is_not_taken_over_while_its_progress_file_is_fresh(app, tmp_path):
    # An import runs in one transaction: the heartbeat it writes to the job table stays invisible
    # to other workers until it commits. Its progress file is what tells them it is alive.
    from models.base import db
    from models.base import utcnow

    seen = {}

    @handler("test_long_transaction")
    def long_transaction(job, context):
        with db.atomic():
            context.progress(5, 10, force=True)
            later = utcnow() + datetime.timedelta(minutes=10)  # the table's heartbeat looks stale then
            seen["claimed"] = Job.claim_next(later, alive=lambda i: jobs.read_progress(tmp_path, i) is not None)
            seen["live"] = jobs.read_progress(tmp_path, job.id)
        return None, None, "done"

    try:
        job = Job.enqueue("test_long_transaction")
        finished = run_one(tmp_path, app=app)
    finally:
        jobs.HANDLERS.pop("test_long_transaction", None)
    assert seen == {"claimed": None, "live": (5, 10)}
    assert finished.id == job.id and finished.status == JobStatus.DONE
    assert not jobs.progress_path(tmp_path, job.id).exists()  # gone once the job is done


def test_a_running_job_whose_progress_file_went_quiet_is_taken_over(app, tmp_path):
    import os

    job = Job.enqueue("test_quiet")
    assert Job.claim_next(T0).id == job.id
    jobs.write_progress(tmp_path, job.id, 3, 10)
    alive = lambda i: jobs.read_progress(tmp_path, i) is not None  # noqa: E731
    assert Job.claim_next(T0 + STALE_AFTER * 2, alive=alive) is None  # the file is fresh
    old = jobs.progress_path(tmp_path, job.id).stat().st_mtime - STALE_AFTER.total_seconds() - 60
    os.utime(jobs.progress_path(tmp_path, job.id), (old, old))
    assert Job.claim_next(T0 + STALE_AFTER * 2, alive=alive).id == job.id


def test_the_job_page_shows_the_progress_of_the_progress_file(world, client, app, tmp_path):
    from models.accounts import Staff
    from services.jobs import write_progress

    sign_in(client, "station")
    job = Job.enqueue("test_steps", {}, owner=Staff.get(Staff.username == "station").id)
    assert Job.claim_next(T0).id == job.id
    write_progress(app.extensions["jobs"].result_dir, job.id, 40, 100)
    page = client.get(f"/admin/reports/jobs/{job.id}/").text
    assert 'value="40"' in page
