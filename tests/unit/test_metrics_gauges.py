"""Each service's scrape-time gauges, read from its own tables (SQLite) and its pool's disk."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import Session, sessionmaker

from certificate.adapters import gauges as certificate_gauges
from certificate.adapters.orm import Base as CertificateBase
from certificate.adapters.orm import CertificateRow
from directdl.contracts.host import HostState
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine
from host_agent.adapters import gauges as agent_gauges
from host_agent.adapters.orm import Base as AgentBase
from host_agent.adapters.orm import JobRow
from host_agent.domain import JobState
from registration.adapters import gauges as registration_gauges
from registration.adapters.orm import Base as RegistrationBase
from registration.adapters.orm import HostRow

pytestmark = pytest.mark.unit


def service(name: str, metadata: MetaData) -> tuple[Any, sessionmaker[Session]]:
    """What a gauge reads of its Service: its name and its database's sessions."""
    sessions = session_factory(memory_engine(metadata))
    return SimpleNamespace(definition=SimpleNamespace(name=name), sessions=sessions), sessions


def samples(families: list[Any]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (s.name, tuple(s.labels.values())): s.value for family in families for s in family.samples
    }


def host(host_id: str, zone: str, state: HostState, silent_for: float) -> HostRow:
    last_seen = datetime.now(UTC) - timedelta(seconds=silent_for)
    return HostRow(
        host_id=host_id,
        zone_id=zone,
        cluster_id="c1",
        state=state,
        interval_seconds=5.0,
        last_seen=last_seen,
        silent_after=last_seen + timedelta(seconds=15),
    )


def test_hosts_are_counted_by_zone_and_their_state_now_not_the_one_they_last_said() -> None:
    svc, sessions = service("registration", RegistrationBase.metadata)
    with sessions() as session:
        session.add_all(
            [
                host("h1", "zone-1", HostState.UP, silent_for=1),
                host("h2", "zone-1", HostState.UP, silent_for=1),
                # Said Up, then fell silent for longer than three heartbeats: Down.
                host("h3", "zone-1", HostState.UP, silent_for=60),
                host("h4", "zone-2", HostState.DOWN, silent_for=1),
            ]
        )
        session.commit()

    assert samples(registration_gauges.hosts_by_state(svc)) == {
        ("directdl_hosts", ("registration", "zone-1", "Up")): 2,
        ("directdl_hosts", ("registration", "zone-1", "Down")): 1,
        ("directdl_hosts", ("registration", "zone-2", "Up")): 0,
        ("directdl_hosts", ("registration", "zone-2", "Down")): 1,
    }


def job(job_id: str, state: JobState) -> JobRow:
    now = datetime.now(UTC)
    return JobRow(
        job_id=job_id,
        template_id="t1",
        state=state.value,
        command={},
        created_at=now,
        updated_at=now,
    )


def test_an_agent_counts_its_unfinished_jobs_by_state_and_every_state_has_a_series() -> None:
    svc, sessions = service("host-agent-h1", AgentBase.metadata)
    with sessions() as session:
        states = [JobState.QUEUED] * 2 + [JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED]
        session.add_all(job(f"j{n}", state) for n, state in enumerate(states))
        session.commit()

    assert samples(agent_gauges.download_jobs(svc, host_id="h1")) == {
        ("directdl_download_jobs", ("host-agent-h1", "h1", "queued")): 2,
        ("directdl_download_jobs", ("host-agent-h1", "h1", "running")): 1,
        ("directdl_download_jobs", ("host-agent-h1", "h1", "held")): 0,
    }


def test_a_pool_says_its_file_systems_free_and_used_bytes_as_they_are_now(
    tmp_path: Path,
) -> None:
    svc, _ = service("host-agent-h1", AgentBase.metadata)
    space = samples(agent_gauges.pool_space(svc, host_id="h1", pool_id="p1", path=tmp_path))

    stats = os.statvfs(tmp_path)
    labels = ("host-agent-h1", "h1", "p1")
    free = space[("directdl_pool_free_bytes", labels)]
    used = space[("directdl_pool_used_bytes", labels)]
    assert 0 < free <= stats.f_blocks * stats.f_frsize
    assert 0 < used <= stats.f_blocks * stats.f_frsize


def test_a_missing_pool_raises_so_that_the_scrape_logs_and_skips_it(tmp_path: Path) -> None:
    svc, _ = service("host-agent-h1", AgentBase.metadata)
    with pytest.raises(FileNotFoundError):
        agent_gauges.pool_space(svc, host_id="h1", pool_id="p1", path=tmp_path / "gone")


def certificate(
    cert_id: str, alias: str, expires_in: timedelta, *, revoked: bool
) -> CertificateRow:
    now = datetime.now(UTC)
    return CertificateRow(
        id=cert_id,
        alias=alias,
        zone_id="zone-1",
        hypervisor="KVM",
        pem="-",
        subject="CN=x",
        issuer="CN=x",
        serial="1",
        not_before=now - timedelta(days=1),
        not_after=now + expires_in,
        fingerprint_sha256="ab",
        revoked=revoked,
        created_at=now,
    )


def test_each_certificate_not_revoked_shows_its_seconds_to_expiry() -> None:
    svc, sessions = service("certificate", CertificateBase.metadata)
    with sessions() as session:
        session.add_all(
            [
                certificate("c1", "templates", timedelta(days=30), revoked=False),
                certificate("c2", "old", timedelta(hours=-1), revoked=False),
                certificate("c3", "gone", timedelta(days=30), revoked=True),
            ]
        )
        session.commit()

    left = samples(certificate_gauges.certificate_expiry(svc))
    name = "directdl_certificate_expiry_seconds"
    assert set(left) == {
        (name, ("certificate", "c1", "templates", "zone-1")),
        (name, ("certificate", "c2", "old", "zone-1")),
    }
    month = timedelta(days=30).total_seconds()
    assert month - 60 < left[(name, ("certificate", "c1", "templates", "zone-1"))] <= month
    assert -3660 < left[(name, ("certificate", "c2", "old", "zone-1"))] <= -3600
