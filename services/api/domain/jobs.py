"""Async jobs as CloudStack reports them: pending, succeeded or failed, with a result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import Any

# What directdl answered when a job ended (a reply's result, or a deploy event's fields),
# under this key of `Job.result` until a query makes CloudStack's `jobresult` of it.
OUTCOME = "outcome"
JOBRESULT = "jobresult"


class JobStatus(IntEnum):
    """queryAsyncJobResult's `jobstatus`."""

    PENDING = 0
    SUCCEEDED = 1
    FAILED = 2


@dataclass(frozen=True)
class Job:
    id: str
    api: str
    routing_key: str
    command: bytes
    api_key: str
    created_at: datetime
    instance_type: str | None = None
    instance_id: str | None = None
    status: JobStatus = JobStatus.PENDING
    progress: int = 0
    result_code: int = 0
    # {OUTCOME: what directdl answered}, then {JOBRESULT: CloudStack's jobresult of it}.
    result: dict[str, Any] | None = None
    error_text: str | None = None
    completed_at: datetime | None = None
    asked_again_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.status is JobStatus.PENDING

    def succeeded(self, result: dict[str, Any], now: datetime) -> Job:
        return replace(
            self, status=JobStatus.SUCCEEDED, progress=100, result=result, completed_at=now
        )

    def failed(self, code: int, text: str, now: datetime) -> Job:
        return replace(
            self, status=JobStatus.FAILED, result_code=code, error_text=text, completed_at=now
        )

    def advanced(self, percent: int) -> Job:
        """A pending job's progress only goes up: progress events may come out of order."""
        if not self.pending or percent <= self.progress:
            return self
        return replace(self, progress=min(percent, 99))
