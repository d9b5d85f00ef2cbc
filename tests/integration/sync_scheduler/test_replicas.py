"""Two scheduler replicas on one database: RabbitMQ's single active consumer lets one act."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.bus.delivery import Delivery, Outcome
from directdl.bus.topology import Topology
from directdl.contracts.sync import RunSync
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.services import running
from sync_scheduler.bootstrap import bootstrap
from sync_scheduler.config import SchedulerSettings

pytestmark = pytest.mark.integration


def replica(amqp_url: str, topology: Topology, data_dir: Path, database_url: str) -> Service:
    return bootstrap(
        SchedulerSettings(
            AMQP_URL=amqp_url,
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=data_dir,
            database_url=database_url,
            health_port=0,
        )
    )


def counted(service: Service, name: str, handled: Counter[str]) -> Service:
    process: Callable[[Delivery], Outcome] = service.processor.process

    def counting(delivery: Delivery) -> Outcome:
        if delivery.routing_key == RunSync.routing_key:
            handled[name] += 1
        return process(delivery)

    service.processor.process = counting  # type: ignore[method-assign]
    return service


def test_only_one_replica_acts_and_the_other_takes_over(
    broker_accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
    postgres_url: str,
    client: BusClient,
) -> None:
    handled: Counter[str] = Counter()
    first = counted(
        replica(broker_accounts.url("sync-scheduler"), topology, data_dir, postgres_url),
        "first",
        handled,
    )
    second = counted(
        replica(broker_accounts.url("sync-scheduler"), topology, data_dir, postgres_url),
        "second",
        handled,
    )
    with ExitStack() as stack:
        stop_first = stack.enter_context(ExitStack())
        stop_first.enter_context(running(first))  # consumes first: the active one
        stack.enter_context(running(second))
        for _ in range(6):
            assert client.call(RunSync()).ok
        assert handled == Counter({"first": 6})

        stop_first.close()  # the active replica goes away; RabbitMQ activates the other
        for _ in range(3):
            assert client.call(RunSync(), timeout=15).ok
        assert handled == Counter({"first": 6, "second": 3})
