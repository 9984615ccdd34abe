"""Background jobs: long exports (and later imports) that outlive the request that asked for them."""

import datetime
import json

from peewee import BigIntegerField
from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import TextField

from models.accounts import Staff
from models.base import BaseModel
from models.base import utcnow


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    ALL = (QUEUED, RUNNING, DONE, FAILED)
    FINISHED = (DONE, FAILED)


# A running job whose worker has not reported for this long is taken over by another worker:
# its process died (a restart, a crash) and the job starts again from the beginning.
STALE_AFTER = datetime.timedelta(minutes=2)


class Job(BaseModel):
    """One unit of background work with its progress and, when done, a result file."""

    kind = CharField(max_length=32)
    params = TextField(default="{}")
    owner = ForeignKeyField(Staff, null=True, backref="jobs", on_delete="RESTRICT")
    status = CharField(max_length=16, default=JobStatus.QUEUED, index=True)
    progress = BigIntegerField(default=0)
    total = BigIntegerField(null=True)
    message = TextField(null=True)
    result_path = CharField(max_length=1024, null=True)
    result_name = CharField(max_length=255, null=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    heartbeat_at = DateTimeField(null=True)
    attempts = BigIntegerField(default=0)

    def __str__(self):
        return f"{self.kind} #{self.id}"

    @property
    def arguments(self):
        return json.loads(self.params or "{}")

    @property
    def is_finished(self):
        return self.status in JobStatus.FINISHED

    @property
    def percent(self):
        """Progress as a whole percentage, or None while the total is unknown."""
        if self.status == JobStatus.DONE:
            return 100
        if not self.total:
            return None
        return min(100, int(self.progress * 100 / self.total))

    @classmethod
    def enqueue(cls, kind, params=None, owner=None):
        """A new queued job."""
        return cls.create(kind=kind, params=json.dumps(params or {}, ensure_ascii=False, default=str), owner=owner)

    @classmethod
    def _claimable(cls, now):
        return (cls.status == JobStatus.QUEUED) | (
            (cls.status == JobStatus.RUNNING) & (cls.heartbeat_at < now - STALE_AFTER)
        )

    @classmethod
    def claim_next(cls, now=None, alive=None):
        """Mark the oldest waiting (or abandoned) job as running for this worker and return it, or None.

        The conditional UPDATE makes the claim safe with several worker processes: one wins.
        alive(job_id): True when a running job whose heartbeat here is old shows life elsewhere
        (its worker may be inside a transaction that keeps its heartbeat from this table).
        """
        now = now or utcnow()
        candidates = cls.select(cls.id, cls.status).where(cls._claimable(now)).order_by(cls.id).limit(5).tuples()
        for job_id, status in candidates:
            if status == JobStatus.RUNNING and alive is not None and alive(job_id):
                continue
            claimed = (
                cls.update(
                    status=JobStatus.RUNNING,
                    started_at=now,
                    heartbeat_at=now,
                    progress=0,
                    attempts=cls.attempts + 1,
                    updated_at=now,
                )
                .where((cls.id == job_id) & cls._claimable(now))
                .execute()
            )
            if claimed:
                return cls.get_by_id(job_id)
        return None

    def report_progress(self, done, total=None, now=None):
        """Store the progress; it doubles as the worker's heartbeat."""
        now = now or utcnow()
        self.progress = done
        if total is not None:
            self.total = total
        self.heartbeat_at = now
        Job.update(progress=done, total=self.total, heartbeat_at=now, updated_at=now).where(Job.id == self.id).execute()

    def finish(self, result_path=None, result_name=None, message=None, now=None):
        now = now or utcnow()
        self.status, self.finished_at, self.heartbeat_at = JobStatus.DONE, now, now
        self.result_path, self.result_name, self.message = result_path, result_name, message
        if self.total is None:
            self.total = self.progress
        self.save()

    def fail(self, message, now=None):
        now = now or utcnow()
        self.status, self.finished_at, self.heartbeat_at, self.message = JobStatus.FAILED, now, now, message
        self.save()
