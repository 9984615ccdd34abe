"""What the back-office pages of background jobs share: the worker, and a user's own jobs."""

from flask import abort
from flask import current_app
from flask_login import current_user

from models.jobs import Job
from models.jobs import JobStatus
from services.jobs import read_progress


def jobs_runner():
    """This process's job worker (services.jobs.Runner), or None."""
    return current_app.extensions.get("jobs")


def runner_if_enabled():
    """The worker, unless the app runs without one (JOBS_WORKER off: tests run jobs themselves)."""
    runner = jobs_runner()
    return runner if runner is not None and current_app.config.get("JOBS_WORKER", True) else None


def own_job_or_404(job_id, kind=None):
    """The signed-in user's job with this id (of this kind), or 404: nobody sees another's job."""
    condition = (Job.id == job_id) & (Job.owner == current_user.id)
    if kind is not None:
        condition &= Job.kind == kind
    job = Job.get_or_none(condition)
    if job is None:
        abort(404)
    return job


def with_live_progress(job):
    """The job, its progress taken from its progress file while it runs (fresher than the table's)."""
    runner = jobs_runner()
    if runner is not None and job.status == JobStatus.RUNNING:
        live = read_progress(runner.result_dir, job.id)
        if live is not None and live[0] >= (job.progress or 0):
            job.progress, job.total = live[0], live[1] if live[1] is not None else job.total
    return job


def wake_worker_for(job):
    """Make sure a worker is running while the job waits (the process that queued it may be gone)."""
    if not job.is_finished:
        runner = runner_if_enabled()
        if runner is not None:
            runner.ensure_started()
