"""A host agent's scrape-time gauges: its unfinished download jobs and its pool's space."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select

from directdl.runtime import metrics
from directdl.runtime.service import Service
from host_agent.adapters.orm import JobRow
from host_agent.domain import JobState

# The states a job waits or works in; ended jobs are counted by `directdl_downloads_total`.
UNFINISHED = (JobState.QUEUED, JobState.RUNNING, JobState.HELD)


def download_jobs(service: Service[Any], *, host_id: str) -> list[Metric]:
    with service.sessions() as session:
        rows = session.execute(
            select(JobRow.state, func.count())
            .where(JobRow.state.in_([s.value for s in UNFINISHED]))
            .group_by(JobRow.state)
        ).all()
    counts = {state: count for state, count in rows}
    name = service.definition.name
    return [
        metrics.download_jobs.family(
            ((name, host_id, state.value.lower()), counts.get(state.value, 0))
            for state in UNFINISHED
        )
    ]


def pool_space(service: Service[Any], *, host_id: str, pool_id: str, path: Path) -> list[Metric]:
    """The pool's file system as it is now: free is what an unprivileged writer may use."""
    stats = os.statvfs(path)
    labels = (service.definition.name, host_id, pool_id)
    free = stats.f_bavail * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return [
        metrics.pool_free_bytes.family([(labels, free)]),
        metrics.pool_used_bytes.family([(labels, used)]),
    ]
