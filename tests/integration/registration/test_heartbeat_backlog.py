"""A heartbeat backlog in `registration.hosts` makes no live host Down; a silent host still is.

Registration runs as a process of its own, frozen with SIGSTOP while twenty hosts, each its
own broker user, go on beating every half second; a twenty-first stops beating for good."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from directdl.bus.client import BusClient, ReplyTimeout
from directdl.bus.topology import Topology
from directdl.contracts.host import ListHosts
from directdl.runtime.accounts import provision
from directdl_testing.accounts import TEST_NAMES, TestAccounts, host_accounts
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.simhosts import HostIdentity, SimulatedHosts
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

INTERVAL = 0.5
BEATING = [f"backlog-{n:02}" for n in range(20)]
QUITTER = "backlog-quits"
# Frozen for eight heartbeat intervals: were it judged by the wall clock on waking, every
# host would have been silent for more than three.
FROZEN_S = 8 * INTERVAL
WATCH_AFTER_S = 6 * INTERVAL


@dataclass
class Lists:
    """What host.list answered, polled throughout; `down` holds every live host ever Down."""

    answered: int = 0
    unanswered: int = 0
    down: list[tuple[float, str]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)


class Poller(threading.Thread):
    def __init__(self, url: str, topology: Topology) -> None:
        super().__init__(name="host-list-poller", daemon=True)
        self.url, self.topology = url, topology
        self.lists = Lists()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with BusClient(self.url, self.topology, app_id="test-poller") as client:
                while not self.done.is_set():
                    self._once(client)
                    self.done.wait(INTERVAL / 4)
        except BaseException as err:  # the test fails on it, with this cause
            self.error = err

    def _once(self, client: BusClient) -> None:
        try:
            reply = client.call(ListHosts(), timeout=1.0)
        except ReplyTimeout:
            self.lists.unanswered += 1  # frozen: asked again once it wakes
            return
        assert reply.ok and reply.result is not None, reply
        self.lists.answered += 1
        states = {h["host_id"]: h["state"] for h in reply.result["items"]}
        self.lists.states = states
        now = time.monotonic()
        self.lists.down += [(now, h) for h in BEATING if states.get(h) == "Down"]


@pytest.fixture
def host_users(broker_accounts: TestAccounts) -> None:
    """A broker user for each simulated host, as a deployment gives its agent."""
    provision(
        host_accounts([*BEATING, QUITTER], TEST_NAMES),
        broker_accounts.vhost,
        node=broker_accounts.node,
    )


@pytest.fixture
def registration_process(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> Iterator[ServiceProcess]:
    port = free_port()
    env = clean_env(
        AMQP_URL=broker_accounts.url("registration"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=str(data_dir / "registration"),
        DIRECTDL_LOG_LEVEL="INFO",
        REGISTRATION_HEALTH_PORT=str(port),
        REGISTRATION_CHECK_URLS="false",
        REGISTRATION_WATCHDOG_INTERVAL=str(INTERVAL / 2),
    )
    log_dir = data_dir.parent / "logs"
    log_dir.mkdir(exist_ok=True)
    service = ServiceProcess("registration", env, port, log_dir)
    try:
        yield service.start()
    finally:
        service.stop()


def hosts_queue_depth(accounts: TestAccounts, topology: Topology) -> int:
    """Ready and unacknowledged: a frozen consumer holds up to its prefetch unacknowledged."""
    node = ["-n", accounts.node] if accounts.node else []
    listed = subprocess.run(
        [
            *("rabbitmqctl", *node, "-q", "--no-table-headers", "list_queues"),
            *("-p", accounts.vhost, "name", "messages"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    queue = topology.queue("registration", "hosts")
    counts = dict(line.split("\t") for line in listed.splitlines() if "\t" in line)
    return int(counts[queue])


def test_a_heartbeat_backlog_makes_no_host_down_and_a_silent_one_is_told_down(
    amqp_url: str,
    broker_accounts: TestAccounts,
    topology: Topology,
    host_users: None,
    registration_process: ServiceProcess,
) -> None:
    beating = SimulatedHosts(
        amqp_url, [HostIdentity(h) for h in BEATING], INTERVAL, topology=topology, templates=1
    )
    quitter = SimulatedHosts(amqp_url, [HostIdentity(QUITTER)], INTERVAL, topology=topology)
    poller = Poller(amqp_url, topology)
    with beating, quitter:
        poller.start()
        try:
            wait_until(
                lambda: (
                    set(poller.lists.states) == {*BEATING, QUITTER}
                    and set(poller.lists.states.values()) == {"Up"}
                ),
                timeout=20,
                what=f"every host Up in host.list: {poller.lists}",
            )
            registration_process.kill(signal.SIGSTOP)
            try:
                quitter.stop()  # falls silent while registration is frozen
                time.sleep(FROZEN_S)
                backlog = hosts_queue_depth(broker_accounts, topology)
            finally:
                registration_process.kill(signal.SIGCONT)
            woke = time.monotonic()
            wait_until(
                lambda: poller.lists.states.get(QUITTER) == "Down",
                timeout=10,
                what=f"{QUITTER} Down in host.list: {poller.lists}",
            )
            time.sleep(max(0.0, woke + WATCH_AFTER_S - time.monotonic()))
        finally:
            poller.done.set()
            poller.join(10)

    assert poller.error is None, poller.error
    assert backlog >= len(BEATING) * 4, f"a backlog of {backlog} beats built up while frozen"
    assert poller.lists.down == [], "a live host was listed Down"
    assert poller.lists.unanswered >= 1 and poller.lists.answered > 10, poller.lists
    assert beating.stats.errors == [] and beating.stats.late_ticks == 0, beating.stats
    told_down = {r["host_id"] for r in registration_process.find_logs("host.down")}
    assert told_down == {QUITTER}, "only the host that fell silent was told Down"
    ups = [r["host_id"] for r in registration_process.find_logs("host.up")]
    assert sorted(ups) == sorted([*BEATING, QUITTER]), "each told Up once: none came back"
