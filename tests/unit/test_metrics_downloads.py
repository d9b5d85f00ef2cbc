"""A host agent counts every download's end by outcome and code, and times each by its real
duration: a failure is never observed as 0 s."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from directdl.contracts import download as msg
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.runtime.db import make_engine, session_factory
from directdl_testing.waiting import wait_until
from host_agent.adapters.orm import Base
from host_agent.download.core import DownloadError
from host_agent.jobs import JobRunner, Transferred
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit

SLOW = 0.2  # how long each test's transfer takes before it ends


class Agent:
    """What the runner uses of its Service: a name, sessions, and transactions by name."""

    def __init__(self, database: Path) -> None:
        engine = make_engine(f"sqlite:///{database}")
        Base.metadata.create_all(engine)
        self.sessions = session_factory(engine)
        self.host_id = f"h-{uuid.uuid4().hex[:8]}"  # fresh series for each test
        self.definition = SimpleNamespace(name=f"host-agent-{self.host_id}")

    @contextmanager
    def transaction(self, _work: str) -> Iterator[AgentUnitOfWork]:
        with AgentUnitOfWork(self.sessions) as uow:
            yield uow
            uow.commit()

    def queue(self) -> msg.DownloadTemplate:
        cmd = msg.DownloadTemplate(
            job_id=str(uuid.uuid4()),
            deploy_id="d1",
            template_id=str(uuid.uuid4()),
            url="http://h/t.raw",
            protocol=SourceProtocol.HTTP,
            format=TemplateFormat.RAW,
        )
        with AgentUnitOfWork(self.sessions) as uow:
            uow.jobs.add(cmd.job_id, cmd.template_id, cmd.model_dump(mode="json"))
            uow.commit()
        return cmd

    def value(self, name: str, **labels: str) -> float:
        series = {"service": self.definition.name, "host": self.host_id, **labels}
        return REGISTRY.get_sample_value(name, series) or 0.0


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return Agent(tmp_path / "agent.db")


@contextmanager
def running(agent: Agent, transfer: Any) -> Iterator[JobRunner]:
    runner = JobRunner(agent.host_id, "pool-1", 1, transfer)
    runner.start(cast(Any, agent))
    try:
        yield runner
    finally:
        runner.stop()


def ended(agent: Agent, outcome: str, code: str) -> None:
    def counted() -> bool:
        return agent.value("directdl_downloads_total", outcome=outcome, code=code) == 1

    wait_until(counted, what=f"one {outcome} download counted")


def test_a_failure_is_counted_with_its_code_and_timed_for_as_long_as_it_took(
    agent: Agent,
) -> None:
    def transfer(*_: object) -> Transferred:
        time.sleep(SLOW)
        raise DownloadError(msg.DownloadFailure.NOT_FOUND, "404 for /t.raw", terminal=True)

    agent.queue()
    with running(agent, transfer):
        ended(agent, "failed", "NOT_FOUND")

    assert agent.value("directdl_download_seconds_count", outcome="failed") == 1
    assert agent.value("directdl_download_seconds_sum", outcome="failed") >= SLOW
    # Not one sample at 0 s: the smallest bucket holds nothing.
    assert agent.value("directdl_download_seconds_bucket", outcome="failed", le="0.1") == 0
    # No outcome carries a code in its name.
    assert agent.value("directdl_downloads_total", outcome="NOT_FOUND", code="") == 0


def test_a_success_is_counted_and_timed_apart_from_failures(agent: Agent, tmp_path: Path) -> None:
    def transfer(
        cmd: msg.DownloadTemplate, progress: Callable[[int, int | None], None], *_: object
    ) -> Transferred:
        progress(0, 4)
        time.sleep(SLOW)
        progress(4, 4)
        path = tmp_path / cmd.template_id
        path.write_bytes(b"data")
        return Transferred(str(path), 4, "{SHA-256}aa", "{SHA-256}aa", "{SHA-256}aa")

    agent.queue()
    with running(agent, transfer):
        ended(agent, "succeeded", "")

    assert agent.value("directdl_download_seconds_count", outcome="succeeded") == 1
    assert agent.value("directdl_download_seconds_sum", outcome="succeeded") >= SLOW
    assert agent.value("directdl_download_seconds_count", outcome="failed") == 0
    assert agent.value("directdl_bytes_downloaded_total") == 4


def test_a_cancelled_job_is_counted_as_cancelled(agent: Agent) -> None:
    started = threading.Event()

    def transfer(
        _cmd: object, _p: object, cancelled: Callable[[], bool], _r: object
    ) -> Transferred:
        started.set()
        wait_until(cancelled, what="the cancel")
        raise DownloadError(msg.DownloadFailure.CANCELLED, "cancelled at byte 7", terminal=True)

    cmd = agent.queue()
    with running(agent, transfer) as runner:
        assert started.wait(5)
        runner.cancel(cmd.job_id, report=True)
        ended(agent, "cancelled", "CANCELLED")

    assert agent.value("directdl_downloads_total", outcome="failed", code="CANCELLED") == 0
    assert agent.value("directdl_download_seconds_count", outcome="cancelled") == 1
