"""The download runner: each outcome through the outbox, under the name the table declares."""

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

from directdl.bus.processing import check_emits
from directdl.contracts import download as msg
from directdl.contracts.base import Message
from directdl.contracts.pool import CachePolicy, CopiesRemoved
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.runtime.db import make_engine, session_factory
from directdl_testing.waiting import wait_until
from host_agent.adapters.orm import Base
from host_agent.domain import JobState, StoredFile
from host_agent.download.core import DownloadError, Resume
from host_agent.handlers import HANDLERS
from host_agent.jobs import POLL_SECONDS, JobRunner, Transferred
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit

Progress = Callable[[int, int | None], None]


class Agent:
    """What the runner uses of its Service: transactions by name, each held to what the
    table's `background` lets that work publish, as `Service.transaction` holds it."""

    def __init__(self, database: Path) -> None:
        # A file, not the shared in-memory connection: the runner's threads and the test's
        # own reads and writes each get a connection, and SQLite's locking keeps them apart.
        engine = make_engine(f"sqlite:///{database}")
        Base.metadata.create_all(engine)
        self.sessions = session_factory(engine)
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
def agent(tmp_path: Path) -> Agent:
    return Agent(tmp_path / "agent.db")


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
    def transfer(cmd: msg.DownloadTemplate, progress: Progress, *_: object) -> Transferred:
        progress(5, 10)
        (tmp_path / cmd.template_id).write_bytes(b"x" * 10)
        return Transferred(
            str(tmp_path / cmd.template_id), 10, "{SHA-256}aa", "{SHA-256}aa", "{SHA-256}aa"
        )

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


def test_a_held_job_waits_until_resumed_then_a_stored_file_answers_it(
    agent: Agent, tmp_path: Path
) -> None:
    path = tmp_path / "t1"
    path.write_bytes(b"x" * 10)
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.pool.put(StoredFile("t1", "pool-1", str(path), 10, "{SHA-256}aa", "{SHA-256}aa"))
        uow.commit()
    cmd = queue(agent, JobState.HELD)

    def transfer(*_: object) -> Transferred:
        raise AssertionError("a stored template is not downloaded again")

    with running(agent, transfer) as runner:
        time.sleep(3 * POLL_SECONDS)
        assert agent.job_state(cmd.job_id) == JobState.HELD  # nobody said to resume it
        with AgentUnitOfWork(agent.sessions) as uow:
            uow.jobs.transition(cmd.job_id, {JobState.HELD}, JobState.QUEUED)
            uow.commit()
        runner.wake()
        done = outcome(agent)

    assert isinstance(done, msg.DownloadCompleted)
    assert (done.job_id, done.cached, done.path) == (cmd.job_id, True, str(path))


def test_the_validator_a_fetcher_learns_is_kept_for_the_next_start(agent: Agent) -> None:
    seen: list[str | None] = []

    def transfer(
        cmd: msg.DownloadTemplate, _p: Progress, _c: object, resume: Resume
    ) -> Transferred:
        seen.append(resume.validator)
        resume.remember('"v2"')
        raise DownloadError(msg.DownloadFailure.CONNECTION, "dropped", terminal=False)

    cmd = queue(agent)
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.jobs.set_validator(cmd.job_id, '"v1"')
        uow.commit()
    with running(agent, transfer):
        outcome(agent)
    assert seen == ['"v1"']
    with AgentUnitOfWork(agent.sessions) as uow:
        row = uow.jobs.get(cmd.job_id)
        assert row is not None and row.validator == '"v2"'


@pytest.mark.parametrize("report", [True, False])
def test_a_cancelled_running_job_ends_cancelled_reported_only_when_asked(
    agent: Agent, report: bool
) -> None:
    started = threading.Event()

    def transfer(
        _cmd: object, _p: object, cancelled: Callable[[], bool], _r: object
    ) -> Transferred:
        started.set()
        wait_until(cancelled, what="the cancel")
        raise DownloadError(msg.DownloadFailure.CANCELLED, "cancelled at byte 7", terminal=True)

    cmd = queue(agent)
    with running(agent, transfer) as runner:
        started.wait(5)
        runner.cancel(cmd.job_id, report=report)
        wait_until(lambda: agent.job_state(cmd.job_id) == JobState.CANCELLED, what="cancelled")
    failures = [m for m in agent.published if isinstance(m, msg.DownloadFailed)]
    assert [f.code for f in failures] == ([msg.DownloadFailure.CANCELLED] if report else [])


def test_a_stored_copy_brings_the_pool_back_under_its_cap_keeping_itself(
    agent: Agent, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    old.write_bytes(b"o" * 8)
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.pool.put(StoredFile("old", "pool-1", str(old), 8, "{SHA-256}o", "{SHA-256}o"))
        uow.cache_policy.save(CachePolicy(max_bytes=5))
        uow.commit()

    def transfer(cmd: msg.DownloadTemplate, *_: object) -> Transferred:
        (tmp_path / cmd.template_id).write_bytes(b"x" * 10)
        return Transferred(
            str(tmp_path / cmd.template_id), 10, "{SHA-256}aa", "{SHA-256}aa", "{SHA-256}bb"
        )

    cmd = queue(agent)
    with running(agent, transfer):
        done = outcome(agent)
        wait_until(lambda: any(isinstance(m, CopiesRemoved) for m in agent.published))
    assert isinstance(done, msg.DownloadCompleted) and done.image_digest == "{SHA-256}bb"
    [removed] = [m for m in agent.published if isinstance(m, CopiesRemoved)]
    assert [c.template_id for c in removed.removed] == ["old"]  # over the cap, the new one stays
    assert not old.exists() and (tmp_path / cmd.template_id).exists()
