"""Replicas on PostgreSQL: two each of registration and certificate, sharing their queues,
lose one each to SIGKILL mid-stream with every effect done exactly once; of two schedulers,
the standby takes over within one tick."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text

from directdl.bus.client import DIRECT_REPLY_TO, ReplyTimeout
from directdl.bus.topology import Topology
from directdl.contracts import deploy
from directdl.contracts.certificate import UploadCertificate
from directdl.contracts.settings import UpdateSetting
from directdl.runtime.live_settings import RELOAD_SECONDS
from directdl_testing import keytool
from directdl_testing.certs import make_self_signed
from directdl_testing.counting import EveryReply
from directdl_testing.nginx import Nginx
from directdl_testing.postgres import PostgresUnavailable, temporary_database
from directdl_testing.processes import ServiceProcess
from directdl_testing.recorder import MessageRecorder

pytestmark = pytest.mark.e2e

T = TypeVar("T")

COMMANDS = 2_000
KILL_AFTER = 500  # commands published before a registration replica is SIGKILLed
UPLOADS = 20
KILL_UPLOAD_AFTER = 5
HOSTS = ("host-1", "host-2")
INTERVAL = "direct.download.certificate.background.task.interval"
INTERVAL_HOURS = 0.001  # a timed sync run every 3.6 s
IMAGE_BYTES = 8 * 2**20  # four seconds at the slow location's 2 MB/s


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """A PostgreSQL database for each replicated service, as compose gives them."""
    try:
        with temporary_database() as registration, temporary_database() as certificate:
            yield {"registration": registration, "certificate": certificate}
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="2m") as server:
        yield server


def register_body(index: int) -> bytes:
    return json.dumps(
        {
            "name": f"replica-{index:04d}",
            "url": f"https://images.example/replica-{index:04d}.qcow2",
            "zone_id": "zone-1",
            "hypervisor": "KVM",
            "format": "QCOW2",
            "checksum": "{SHA-256}" + hashlib.sha256(str(index).encode()).hexdigest(),
            "validate_url": False,
        }
    ).encode()


def handled(replica: ServiceProcess, routing_key: str) -> int:
    """Messages of this key the replica handled on its own (a group logs no line for each)."""
    return len(replica.find_logs("message.handled", all_runs=True, routing_key=routing_key))


def rows(database_url: str, query: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


def drain(events: MessageRecorder, quiet_s: float = 2.0) -> None:
    """Take in what the recorder's queue holds until nothing new comes for `quiet_s`."""
    while True:
        before = len(events.messages)
        events.poll(quiet_s)
        if len(events.messages) == before:
            return


def test_killing_a_replica_of_each_loses_and_doubles_nothing(
    databases: dict[str, str],  # first, so that the databases outlive the services
    start_service: Callable[..., ServiceProcess],
    amqp_url: str,
    topology: Topology,
    nginx: Nginx,
    data_dir: Path,
) -> None:
    registrations = [
        start_service(
            "registration",
            extra_env={
                "REGISTRATION_DATABASE_URL": databases["registration"],
                "REGISTRATION_CHECK_URLS": "false",
            },
        )
        for _ in range(2)
    ]
    certificates = [
        start_service(
            "certificate",
            env_prefix="CERTIFICATE",
            extra_env={"CERTIFICATE_DATABASE_URL": databases["certificate"]},
        )
        for _ in range(2)
    ]
    for host_id in HOSTS:
        start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_ZONE_ID": "zone-1",
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": "1",
            },
        )
    image = os.urandom(IMAGE_BYTES)
    nginx.add_file("big.raw", image)
    pems = [make_self_signed(f"replica-ca-{i}", ["DNS:localhost"])[0] for i in range(UPLOADS)]

    with (
        EveryReply(amqp_url, topology, app_id="test-replicas") as client,
        MessageRecorder(amqp_url, topology, "template.registered", "cert.uploaded") as events,
    ):
        big = {
            "name": "big.raw",
            "url": f"{nginx.http_url}/slow/big.raw",
            "zone_id": "zone-1",
            "hypervisor": "KVM",
            "format": "RAW",
            "checksum": hashlib.sha256(image).hexdigest(),
        }
        registered = client.call_raw("template.register", json.dumps(big).encode(), timeout=20)
        assert registered.ok, registered
        template_id = registered.result["template"]["id"]  # type: ignore[index]
        command = deploy.DeployTemplate(template_id=template_id, zone_id="zone-1")
        client.publish(
            "template.deploy",
            command.model_dump_json().encode(),
            reply_to=DIRECT_REPLY_TO,
            correlation_id="deploy",
        )
        # The replica that started the deploy is the one killed: the completion is then
        # handled by the other.
        starter = _waited(lambda: [r for r in registrations if handled(r, "template.deploy")])[0]

        message_ids = [str(uuid.uuid4()) for _ in range(COMMANDS)]
        for index, message_id in enumerate(message_ids):
            if index == KILL_AFTER:
                starter.kill(signal.SIGKILL)
                killed_at = time.monotonic()
            if index % 100 == 0:
                events.poll()  # the recorder's connection has heartbeats to answer too
            client.publish(
                "template.register",
                register_body(index),
                message_id=message_id,
                correlation_id=message_id,
                reply_to=DIRECT_REPLY_TO,
            )

        upload_ids = [str(uuid.uuid4()) for _ in range(UPLOADS)]
        for index, (message_id, pem) in enumerate(zip(upload_ids, pems, strict=True)):
            if index == KILL_UPLOAD_AFTER:
                certificates[0].kill(signal.SIGKILL)
            upload = UploadCertificate(
                name=f"replica-ca-{index:02d}",
                zone_id="zone-1",
                hypervisor="KVM",
                certificate=pem.decode(),
            )
            client.publish(
                "cert.upload",
                upload.model_dump_json().encode(),
                message_id=message_id,
                correlation_id=message_id,
                reply_to=DIRECT_REPLY_TO,
            )

        deployed = client.wait_reply("deploy", timeout=90, what="the deploy")
        deadline = time.monotonic() + 90
        replies = {m: _reply(client, m, deadline) for m in message_ids + upload_ids}
        answered = time.monotonic() - killed_at
        drain(events)

    survivor = next(r for r in registrations if r is not starter)
    print(
        f"\nSIGKILLed a registration replica after {KILL_AFTER} of {COMMANDS} commands and a "
        f"certificate replica after {KILL_UPLOAD_AFTER} of {UPLOADS} uploads; redeliveries "
        f"the surviving inboxes knew: registration "
        f"{len(survivor.find_logs('message.duplicate'))}, certificate "
        f"{len(certificates[1].find_logs('message.duplicate'))}; all answered "
        f"{answered:.1f} s after the first kill"
    )
    assert deployed.ok, deployed.error
    # Started by the replica killed, ended by the other.
    assert not starter.find_logs("deploy.ended", all_runs=True)
    assert survivor.find_logs("deploy.ended", deploy_id=deployed.result["deploy_id"])  # type: ignore[index]
    pool = data_dir / "host_agent" / "pools" / deployed.result["host_id"]  # type: ignore[index]
    assert (pool / template_id).read_bytes() == image

    missing = [m for m, reply in replies.items() if reply is None]
    assert missing == [], f"{len(missing)} commands never answered"
    assert all(reply.ok for reply in replies.values() if reply is not None)
    names = Counter(
        name for (name,) in rows(databases["registration"], "SELECT name FROM templates")
    )
    assert sum(1 for n in names if n.startswith("replica-")) == COMMANDS, "templates lost"
    assert [n for n, count in names.items() if count > 1] == [], "templates doubled"
    registered_events = Counter(
        (m.body["template"]["name"], m.properties.message_id)
        for m in events.messages
        if m.routing_key == "template.registered"
    )
    assert len({name for name, _ in registered_events}) == COMMANDS + 1  # and big.raw
    assert len(registered_events) == COMMANDS + 1, "a template was registered twice"

    for message_id in upload_ids:
        outcome = replies[message_id].result
        assert sorted((h["host_id"], h["state"]) for h in outcome["hosts"]) == [
            (host, "UPLOADED") for host in HOSTS
        ]
    uploaded = {
        m.body["certificate"]["alias"] for m in events.messages if m.routing_key == "cert.uploaded"
    }
    assert len(uploaded) == UPLOADS
    for host_id in HOSTS:
        store = data_dir / "host_agent" / "truststores" / f"{host_id}.p12"
        assert sorted(
            a for a in keytool.trusted_aliases(store) if a.startswith("replica-")
        ) == sorted(f"replica-ca-{i:02d}" for i in range(UPLOADS))


def _reply(client: EveryReply, message_id: str, deadline: float) -> Any:
    """The reply to one command, or None if it has not come by `deadline` (monotonic)."""
    try:
        return client.wait_reply(message_id, timeout=max(0.1, deadline - time.monotonic()))
    except ReplyTimeout:
        return None


def _started(run: Any) -> datetime:
    return datetime.fromisoformat(run.body["started_at"])


def _runs_started_after(runs: MessageRecorder, moment: datetime) -> list[Any]:
    runs.poll(0.1)
    return [m for m in runs.messages if _started(m) > moment]


def _waited(
    find: Callable[[], list[T]], timeout: float = 20.0, what: str = "replica that handled it"
) -> list[T]:
    """What `find` returns once it is not empty; an AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while not (found := find()):
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.1)
    return found


@pytest.fixture
def scheduler_database() -> Iterator[str]:
    try:
        with temporary_database() as url:
            yield url
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)


def test_the_standby_scheduler_takes_over_within_one_tick(
    scheduler_database: str,  # first, so that the database outlives the services
    start_service: Callable[..., ServiceProcess],
    amqp_url: str,
    topology: Topology,
) -> None:
    env = {"SYNC_SCHEDULER_DATABASE_URL": scheduler_database}
    replicas = [start_service("sync_scheduler", "SYNC_SCHEDULER", env) for _ in range(2)]
    interval_s = INTERVAL_HOURS * 3600
    with (
        EveryReply(amqp_url, topology, app_id="test-replicas") as client,
        MessageRecorder(amqp_url, topology, "sync.run.completed") as runs,
    ):
        assert client.call(UpdateSetting(name=INTERVAL, value=INTERVAL_HOURS), timeout=15).ok
        # Two runs: by then the standby has read the new interval too, and ticks with it.
        runs.expect("sync.run.completed", timeout=RELOAD_SECONDS + 3 * interval_s, count=2)
        # RabbitMQ's single active consumer: one replica gets every tick, the other none.
        active = _waited(lambda: [r for r in replicas if handled(r, "sync.tick")])[0]
        standby = next(r for r in replicas if r is not active)
        assert handled(standby, "sync.tick") == 0

        active.kill(signal.SIGKILL)
        killed = datetime.now(UTC)
        last_before = max(_started(m) for m in runs.messages)
        first_after = _waited(
            lambda: _runs_started_after(runs, killed),
            timeout=3 * interval_s,
            what="sync run started after the kill",
        )[0]

    ticks = standby.find_logs("message.handled", routing_key="sync.tick")
    took_over = (datetime.fromisoformat(ticks[0]["timestamp"]) - killed).total_seconds()
    gap = (_started(first_after) - last_before).total_seconds()
    print(
        f"\nthe standby handled its first tick {took_over:.1f} s after the active scheduler was "
        f"SIGKILLed; timed runs {gap:.1f} s apart across the kill, every {interval_s:g} s"
    )
    assert first_after.body["trigger"] == "timer"
    # Within one tick: the standby's own timer fires within an interval of the kill. Its
    # first tick may come too soon after the last run to be due (under half an interval),
    # and the next then runs: one run late by at most half an interval, none missed.
    assert took_over <= interval_s + 1.0
    assert gap <= 1.5 * interval_s + 1.0
