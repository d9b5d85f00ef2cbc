"""The download runner: each outcome through the outbox, under the name the table declares."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from directdl.bus.processing import check_emits
from directdl.contracts import download as msg
from directdl.contracts.base import Message
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine
from directdl_testing.waiting import wait_until
from host_agent.adapters.orm import Base
from host_agent.domain import JobState, StoredFile
from host_agent.download.core import DownloadError
from host_agent.handlers import HANDLERS
from host_agent.jobs import JobRunner, Transferred
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit

Progress = Callable[[int, int | None], None]


class Agent:
    """What the runner uses of its Service: transactions by name, each held to what the
    table's `background` lets that work publish, as `Service.transaction` holds it."""

    def __init__(self) -> None:
        self.sessions = session_factory(memory_engine(Base.metadata))
        self.definition = SimpleNamespace(name="host-agent-h1")
        self.published: list[Message] = []

    @contextmanager
    def transaction(self, work: str) -> Iterator[AgentUnitOfWork]:
        with AgentUnitOfWork(self.sessions) as uow:
            yield uow
            check_emits(work, frozenset(HANDLERS.background[work]), uow.outgoing)
            self.published += [message for message, _key in uow.outgoing]
            uow.commit()

    def job_state(self, job_id: str) -> str | None:
        with AgentUnitOfWork(self.sessions) as uow:
            row = uow.jobs.get(job_id)
            return None if row is None else row.state


@pytest.fixture
def agent() -> Agent:
    return Agent()


def queue(agent: Agent, state: JobState = JobState.QUEUED) -> msg.DownloadTemplate:
    cmd = msg.DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id="d1",
        template_id="t1",
        url="http://h/t.raw",
        protocol=SourceProtocol.HTTP,
        format=TemplateFormat.RAW,
    )
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.jobs.add(cmd.job_id, cmd.template_id, cmd.model_dump(mode="json"))
        uow.jobs.set_state(cmd.job_id, state)
        uow.commit()
    return cmd


@contextmanager
def running(agent: Agent, transfer: Any) -> Iterator[JobRunner]:
    runner = JobRunner("h1", "pool-1", 1, transfer)
    runner.start(cast(Any, agent))
    try:
        yield runner
    finally:
        runner.stop()


def outcome(agent: Agent) -> msg.DownloadCompleted | msg.DownloadFailed:
    def ended() -> msg.DownloadCompleted | msg.DownloadFailed | None:
        ends = (msg.DownloadCompleted, msg.DownloadFailed)
        return next((m for m in agent.published if isinstance(m, ends)), None)

    done = wait_until(ended, what="the job's outcome")
    assert done is not None
    return done


def test_a_download_reports_progress_then_completes(agent: Agent, tmp_path: Path) -> None:
    def transfer(cmd: msg.DownloadTemplate, progress: Progress, _: object) -> Transferred:
        progress(5, 10)
        (tmp_path / cmd.template_id).write_bytes(b"x" * 10)
        return Transferred(str(tmp_path / cmd.template_id), 10, "{SHA-256}aa", "{SHA-256}aa")

    cmd = queue(agent)
    with running(agent, transfer):
        done = outcome(agent)

    assert isinstance(done, msg.DownloadCompleted)
    assert (done.job_id, done.cached, done.size) == (cmd.job_id, False, 10)
    [progress] = [m for m in agent.published if isinstance(m, msg.DownloadProgress)]
    assert (progress.bytes_done, progress.total) == (5, 10)
    assert agent.job_state(cmd.job_id) == JobState.SUCCEEDED


def test_a_download_error_fails_the_job_with_its_code(agent: Agent) -> None:
    def transfer(*_: object) -> Transferred:
        raise DownloadError(msg.DownloadFailure.NOT_FOUND, "no t.raw on h", terminal=True)

    cmd = queue(agent)
    with running(agent, transfer):
        failed = outcome(agent)

    assert isinstance(failed, msg.DownloadFailed)
    assert (failed.code, failed.message) == (msg.DownloadFailure.NOT_FOUND, "no t.raw on h")
    assert agent.job_state(cmd.job_id) == JobState.FAILED


def test_a_job_a_crash_left_running_is_resumed_and_a_stored_file_answers_it(
    agent: Agent, tmp_path: Path
) -> None:
    path = tmp_path / "t1"
    path.write_bytes(b"x" * 10)
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.pool.put(StoredFile("t1", "pool-1", str(path), 10, "{SHA-256}aa", "{SHA-256}aa"))
        uow.commit()
    cmd = queue(agent, JobState.RUNNING)

    def transfer(*_: object) -> Transferred:
        raise AssertionError("a stored template is not downloaded again")

    with running(agent, transfer):
        done = outcome(agent)

    assert isinstance(done, msg.DownloadCompleted)
    assert (done.job_id, done.cached, done.path) == (cmd.job_id, True, str(path))
