"""The agent's side of a job's and a copy's end: resume, cancel, evict, delete, the limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from directdl.bus.memory import InMemoryBus
from directdl.contracts import download as msg
from directdl.contracts.pool import CachePolicy, EvictTemplates, RemovalReason
from directdl.contracts.settings import SettingsChanged
from directdl.contracts.template import SourceProtocol, TemplateDeleted, TemplateFormat
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine
from host_agent.adapters.orm import Base, StoredTemplateRow, store
from host_agent.domain import JobState, StoredFile
from host_agent.download.sink import partial_name
from host_agent.handlers import HANDLERS
from host_agent.inventory import SentInventory
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit


class Agent:
    def __init__(self, pool: Path) -> None:
        self.pool = pool
        self.sessions = session_factory(memory_engine(Base.metadata))
        self.woken: list[int] = []
        self.cancelled: list[tuple[str, bool]] = []
        self.bus = InMemoryBus.serving(
            HANDLERS,
            {
                "host_id": "h1",
                "zone_id": "zone-1",
                "cluster_id": "cluster-1",
                "pool_id": "pool-1",
                "pool": pool,
                "truststore": TrustStore(pool.parent / "t.p12", "pw"),
                "wake_runner": lambda: self.woken.append(1),
                "cancel_job": lambda job_id, report: self.cancelled.append((job_id, report)),
                "heartbeat_interval": lambda: 5.0,
                "sent_inventory": SentInventory(),
                "cache_interval": lambda: 60.0,
            },
            lambda: AgentUnitOfWork(self.sessions),
            store,
            self.sessions,
            {"host_id": "h1"},
        )

    def job(self, state: JobState, template_id: str = "t1") -> msg.DownloadTemplate:
        cmd = download(template_id)
        with AgentUnitOfWork(self.sessions) as uow:
            uow.jobs.add(cmd.job_id, cmd.template_id, cmd.model_dump(mode="json"))
            uow.jobs.set_state(cmd.job_id, state)
            uow.commit()
        return cmd

    def state(self, job_id: str) -> str | None:
        with AgentUnitOfWork(self.sessions) as uow:
            row = uow.jobs.get(job_id)
            return None if row is None else row.state

    def store_copy(self, template_id: str, size: int, used_minutes_ago: float = 0) -> Path:
        path = self.pool / template_id
        path.write_bytes(b"x" * size)
        with AgentUnitOfWork(self.sessions) as uow:
            uow.pool.put(
                StoredFile(template_id, "pool-1", str(path), size, "{SHA-256}a", "{SHA-256}a")
            )
            used = datetime.now(UTC) - timedelta(minutes=used_minutes_ago)
            uow.session.execute(
                update(StoredTemplateRow)
                .where(StoredTemplateRow.template_id == template_id)
                .values(last_used_at=used)
            )
            uow.commit()
        return path

    def stored(self) -> list[str]:
        with AgentUnitOfWork(self.sessions) as uow:
            return [copy.template_id for copy in uow.pool.all()]

    def send(self, command: Any) -> dict[str, Any] | None:
        key = type(command).address(host_id="h1")
        reply = self.bus.reply_for(self.bus.submit(command, key))
        assert reply is not None and reply.ok, reply
        return reply.result


def download(template_id: str = "t1", **fields: Any) -> msg.DownloadTemplate:
    return msg.DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id="d1",
        template_id=template_id,
        url="http://h/t.raw",
        protocol=SourceProtocol.HTTP,
        format=TemplateFormat.RAW,
        **fields,
    )


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    pool = tmp_path / "pool"
    pool.mkdir()
    return Agent(pool)


def test_a_held_job_resumes_when_told_and_an_unknown_one_says_so(agent: Agent) -> None:
    held = agent.job(JobState.HELD)
    answer = agent.send(msg.ResumeDownload(job_id=held.job_id, deploy_id="d1"))
    assert answer == {"job_id": held.job_id, "state": "QUEUED"}
    assert agent.state(held.job_id) == JobState.QUEUED and agent.woken == [1]
    again = agent.send(msg.ResumeDownload(job_id=held.job_id, deploy_id="d1"))
    assert again is not None and again["state"] == "QUEUED" and agent.woken == [1]
    unknown = agent.send(msg.ResumeDownload(job_id="nope", deploy_id="d1"))
    assert unknown is not None and unknown["state"] == "UNKNOWN"


def test_a_cancelled_held_job_ends_and_its_partial_goes_with_nothing_reported(
    agent: Agent,
) -> None:
    held = agent.job(JobState.HELD)
    partial = agent.pool / partial_name(held.template_id, held.job_id)
    partial.write_bytes(b"half")
    answer = agent.send(msg.CancelDownload(job_id=held.job_id, deploy_id="d1", reason="moved"))
    assert answer is not None and answer["state"] == JobState.CANCELLED
    assert agent.state(held.job_id) == JobState.CANCELLED
    assert not partial.exists()
    assert agent.bus.published("template.download.#") == []
    # too late to resume it now
    late = agent.send(msg.ResumeDownload(job_id=held.job_id, deploy_id="d1"))
    assert late is not None and late["state"] == JobState.CANCELLED


def test_a_running_job_is_handed_to_the_runner_to_stop(agent: Agent) -> None:
    running = agent.job(JobState.RUNNING)
    answer = agent.send(msg.CancelDownload(job_id=running.job_id, deploy_id="d1", reason="x"))
    assert answer is not None and answer["state"] == "CANCELLING"
    assert agent.cancelled == [(running.job_id, False)]


def test_evicting_removes_copies_nothing_uses_and_says_which_it_kept(agent: Agent) -> None:
    free = agent.store_copy("free", 100)
    busy = agent.store_copy("busy", 50)
    agent.job(JobState.QUEUED, template_id="busy")
    agent.send(EvictTemplates(template_ids=None))
    [event] = agent.bus.published("template.copies.removed")
    assert [(c["template_id"], c["reason"]) for c in event["removed"]] == [("free", "REQUESTED")]
    assert [c["template_id"] for c in event["kept"]] == ["busy"]
    assert event["freed_bytes"] == 100
    assert not free.exists() and busy.exists()
    assert agent.stored() == ["busy"]


def test_a_deleted_template_stops_its_jobs_reported_and_its_copy_goes(agent: Agent) -> None:
    copy = agent.store_copy("t1", 10)
    queued = agent.job(JobState.QUEUED)
    running = agent.job(JobState.RUNNING)
    agent.bus.submit(TemplateDeleted(id="t1", name="n", zone_ids=["zone-1"]))
    [failed] = agent.bus.published("template.download.failed")
    assert (failed["job_id"], failed["code"]) == (queued.job_id, "CANCELLED")
    assert agent.cancelled == [(running.job_id, True)]
    [event] = agent.bus.published("template.copies.removed")
    assert [(c["template_id"], c["reason"]) for c in event["removed"]] == [("t1", "DELETED")]
    assert not copy.exists() and agent.stored() == []


def test_the_limits_follow_the_settings_and_the_timer_holds_the_pool_to_them(
    agent: Agent,
) -> None:
    agent.store_copy("old", 60, used_minutes_ago=30)
    agent.store_copy("new", 60, used_minutes_ago=1)
    agent.bus.tick("cache.enforce")
    assert agent.bus.published("template.copies.removed") == []  # no cap yet
    changed = SettingsChanged(
        name="directdl.pool.cache.max.bytes",
        value=100,
        previous=0,
        owner="registration",
        changed_at=datetime.now(UTC),
    )
    agent.bus.submit(changed)
    agent.bus.tick("cache.enforce")
    [event] = agent.bus.published("template.copies.removed")
    assert [(c["template_id"], c["reason"]) for c in event["removed"]] == [
        ("old", RemovalReason.CAP)
    ]
    assert agent.stored() == ["new"]


def test_a_download_brings_the_limits_and_a_cached_answer_counts_as_a_use(agent: Agent) -> None:
    agent.store_copy("t1", 10, used_minutes_ago=60)
    answer = agent.send(download(cache=CachePolicy(max_bytes=5, max_age_s=7)))
    assert answer is not None and answer["state"] == "CACHED"
    with AgentUnitOfWork(agent.sessions) as uow:
        assert uow.cache_policy.get() == CachePolicy(max_bytes=5, max_age_s=7)
        [copy] = uow.pool.all()
    assert copy.last_used_at is not None
    assert datetime.now(UTC) - copy.last_used_at < timedelta(minutes=1)
