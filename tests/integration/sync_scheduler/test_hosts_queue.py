"""The scheduler's batched hosts queue over RabbitMQ, on PostgreSQL: hosts come Up in one
run, a beat with an unknown digest asks that host for its inventory, a stale beat is ignored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.host import HostHeartbeat, HostInventory
from directdl_testing.accounts import TestAccounts
from directdl_testing.messages import heartbeat, host_says
from directdl_testing.recorder import MessageRecorder
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from sync_scheduler.adapters.orm import HostInventoryRow, HostRow
from sync_scheduler.bootstrap import bootstrap
from sync_scheduler.config import SchedulerSettings

pytestmark = pytest.mark.integration


def say(client_as: Callable[[str], BusClient], *messages: HostInventory | HostHeartbeat) -> None:
    """Each message as its host's agent sends it, in order."""
    for message in messages:
        sender = f"host-agent-{message.host_id}"
        client_as(sender).publish(message.routing_key, message.model_dump_json().encode())


def test_hosts_queue_on_postgresql(
    broker_accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
    postgres_url: str,
    recorder: MessageRecorder,
    client_as: Callable[[str], BusClient],
) -> None:
    scheduler = bootstrap(
        SchedulerSettings(
            AMQP_URL=broker_accounts.url("sync-scheduler"),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=data_dir,
            database_url=postgres_url,
            health_port=0,
        )
    )
    now = datetime.now(UTC)
    with running(scheduler):
        say(client_as, *host_says("host-1", sent_at=now), *host_says("host-2", sent_at=now))
        say(client_as, heartbeat("host-3", sent_at=now))
        [asked] = recorder.expect("host.host-3.inventory.request", timeout=10)
        assert asked.body["digest_seen"] == heartbeat("host-3").inventory_digest
        assert asked.properties.user_id == "sync-scheduler"
        say(client_as, heartbeat("host-1", sent_at=now - timedelta(seconds=30), state="Down"))
        engine = create_engine(postgres_url)
        try:

            def hosts() -> dict[str, tuple[str, datetime]]:
                with Session(engine) as session:
                    rows = session.execute(
                        select(HostRow.host_id, HostRow.state, HostRow.last_seen)
                    )
                    return {h: (s, seen) for h, s, seen in rows}

            wait_until(lambda: len(hosts()) == 3, what="three hosts stored")
            # The stale Down beat was published last; once a later beat is in, it was handled.
            say(client_as, heartbeat("host-2", sent_at=now + timedelta(seconds=5)))
            wait_until(lambda: hosts()["host-2"][1] > now, what="host-2's later beat")
            assert hosts()["host-1"] == ("Up", now)
            with Session(engine) as session:
                stored = set(session.scalars(select(HostInventoryRow.host_id)))
            assert stored == {"host-1", "host-2"}
        finally:
            engine.dispose()
        recorder.poll(0.5)
    runs = [m.body for m in recorder.messages if m.routing_key == "sync.run.completed"]
    assert runs and {r["trigger"] for r in runs} == {"host"}
    assert sum(r["hosts_checked"] for r in runs) == 2, "host-3's inventory is not in"
