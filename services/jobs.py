"""Background jobs: a table of work (models/jobs.py) and a worker thread per process that runs it.

A job is enqueued by a request and run by the worker, so it carries on when the browser is
closed. Its progress doubles as a heartbeat: a job whose worker died (a restart) is taken over
by the next worker that looks (models.jobs.STALE_AFTER). Handlers are registered per kind:

    @handler("export_lines")
    def export_lines(job, context): ...   # context.progress(done, total); return (path, name)

The citizen import (issue 6) registers its own kind the same way.
"""

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import threading
import time
from pathlib import Path

from models.base import db
from models.base import utcnow
from models.jobs import STALE_AFTER
from models.jobs import Job

log = logging.getLogger(__name__)
HANDLERS = {}
# Progress is written at most this often (seconds): each write is an UPDATE.
PROGRESS_EVERY = 1.0
KEEP_FINISHED = datetime.timedelta(days=7)
PURGE_EVERY_SECONDS = 3600


def handler(kind):
    """Register the function that runs jobs of this kind."""

    def register(function):
        HANDLERS[kind] = function
        return function

    return register


@dataclasses.dataclass
class JobContext:
    """What a handler gets besides its job: where to write files and how to report progress."""

    job: Job
    result_dir: Path
    app: object = None
    _last_report: float = 0.0

    def progress(self, done, total=None, force=False):
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_EVERY:
            self._last_report = now
            # Beside the database: a handler that works in one transaction (an import) cannot
            # make its progress visible there until it commits, and the progress is also the
            # heartbeat that tells other workers this job is alive.
            write_progress(self.result_dir, self.job.id, done, total)
            self.job.report_progress(done, total)

    def result_path(self, suffix):
        self.result_dir.mkdir(parents=True, exist_ok=True)
        return self.result_dir / f"job-{self.job.id}{suffix}"


def progress_path(result_dir, job_id):
    return Path(result_dir) / f"job-{job_id}.progress"


def write_progress(result_dir, job_id, done, total):
    """Write a job's progress to its progress file, atomically (the file's time is its heartbeat)."""
    path = progress_path(result_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"done": done, "total": total}))
    os.replace(temporary, path)


def read_progress(result_dir, job_id, now=None):
    """(done, total) from a job's progress file written within STALE_AFTER, or None."""
    path = progress_path(result_dir, job_id)
    try:
        written = path.stat().st_mtime
        figures = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (now or time.time()) - written > STALE_AFTER.total_seconds():
        return None
    return figures.get("done", 0), figures.get("total")


def run_one(result_dir, app=None, now=None):
    """Claim and run the next waiting job; return it (finished or failed), or None when none waits."""
    job = Job.claim_next(now, alive=lambda job_id: read_progress(result_dir, job_id) is not None)
    if job is None:
        return None
    function = HANDLERS.get(job.kind)
    if function is None:
        job.fail(f"no handler for {job.kind!r}")
        return job
    context = JobContext(job=job, result_dir=Path(result_dir), app=app)
    try:
        with app.app_context() if app is not None else contextlib.nullcontext():
            outcome = function(job, context) or (None, None)
        path, name = outcome[:2]
        message = outcome[2] if len(outcome) > 2 else None
        job.finish(str(path) if path else None, name, message)
        progress_path(result_dir, job.id).unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - a job's failure is recorded on the job, not raised
        log.exception("job %s failed", job.id)
        job.fail(getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}")
    return job


class Runner:
    """One worker thread per process, started when the first job is enqueued or looked at."""

    def __init__(self, app, result_dir, poll_seconds=5.0):
        self.app = app
        self._purged_at = None  # time.monotonic() of the last purge
        self.result_dir = Path(result_dir)
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def ensure_started(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="portal-jobs", daemon=True)
                self._thread.start()

    def notify(self):
        """Start the worker if needed and wake it up: a job is waiting."""
        self.ensure_started()
        self._wake.set()

    def stop(self, timeout=10):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self):
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with db.connection_context():
                    ran = run_one(self.result_dir, app=self.app)
            except Exception:  # noqa: BLE001 - the worker must outlive a database hiccup
                log.exception("the job worker failed to claim a job")
                ran = None
            if ran is None:
                self.purge_if_due()
                self._wake.wait(self.poll_seconds)

    def purge_if_due(self, clock=time.monotonic):
        """Once an hour, when idle: drop finished jobs and their files after KEEP_FINISHED.

        Export files hold personal data; they are kept long enough to be downloaded, not forever.
        """
        now = clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_SECONDS:
            return None
        self._purged_at = now
        try:
            with db.connection_context():
                return purge_finished(KEEP_FINISHED)
        except Exception:  # noqa: BLE001 - a failed purge is retried at the next one
            log.exception("the job worker failed to purge old jobs")
            return None


def enqueue(kind, params, owner=None, runner=None):
    """Store a job and wake the worker; return the job."""
    job = Job.enqueue(kind, params, owner)
    if runner is not None:
        runner.notify()
    return job


def purge_finished(older_than, now=None):
    """Delete finished jobs (and their files) older than the timedelta; return how many."""
    cutoff = (now or utcnow()) - older_than
    old = list(Job.select().where(Job.status.in_(("done", "failed")) & (Job.finished_at < cutoff)))
    for job in old:
        if job.result_path:
            Path(job.result_path).unlink(missing_ok=True)
        job.delete_instance()
    return len(old)
