"""cert.upload and cert.revoke fanned out to 1,000 beating hosts, against a raw-pika anchor."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic
from sqlalchemy import create_engine

from certificate.uow import CertificateUnitOfWork
from directdl.bus.client import DIRECT_REPLY_TO, BusClient
from directdl.bus.topology import Topology
from directdl.contracts import certificate as msg
from directdl.contracts.base import Command
from directdl.contracts.host import TrustedCertificate
from directdl.contracts.reply import Reply
from directdl.runtime.accounts import Names, account_url, operator_account, service_account
from directdl.runtime.db import session_factory
from directdl_testing.accounts import host_accounts, provision_many
from directdl_testing.certs import make_self_signed
from directdl_testing.postgres import temporary_database
from directdl_testing.private_broker import PrivateBroker
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.simhosts import HostIdentity, SimulatedHost, SimulatedHosts
from directdl_testing.waiting import wait_until

NAMES = Names.of(Topology())
GOAL_S = 2.0
SPARE_FILES = 1000
SERVICE = "certificate"
ALIAS = "bench-repo"
ANCHOR_OPERATION = "anchor"
PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()
COMMAND_KEYS = [msg.InstallCertificate.routing_key, msg.RemoveCertificate.routing_key]


class Received:
    """When the hosts received their commands, to tell where a fan-out's time goes."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def since(self, started: float) -> str:
        """First and last command, seconds after `started`; then forgets them."""
        times, self.times = self.times, []
        if not times:
            return "no command received"
        return f"commands received +{min(times) - started:.2f} to +{max(times) - started:.2f} s"


RECEIVED = Received()


def answer_as_the_agent_does(host: SimulatedHost, key: str, body: bytes) -> None:
    """Change the trust store, then answer; the next beat sends the inventory that shows it."""
    RECEIVED.times.append(time.monotonic())
    command = json.loads(body)
    report = {
        "operation_id": command["operation_id"],
        "certificate_id": command["certificate_id"],
        "host_id": host.host_id,
        "alias": command["alias"],
        "answered_at": datetime.now(UTC),
    }
    others = [c for c in host.certificates if c.alias != command["alias"]]
    if key.endswith(".cert.install"):
        fingerprint = "AB"
        host.certificates = [
            *others,
            TrustedCertificate(alias=report["alias"], fingerprint_sha256=fingerprint),
        ]
        host.publish(
            msg.CertificateInstalled(**report, fingerprint_sha256=fingerprint, outcome="installed")
        )
    else:
        host.certificates = others
        host.publish(msg.CertificateRemoved(**report, outcome="removed"))


def anchor(url: str, exchange: str, hosts: list[HostIdentity], timeout: float) -> float:
    """Raw pika: publish an install to each host's queue, collect each host's answer; seconds."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, msg.CertificateInstalled.routing_key)
    run = f"{ANCHOR_OPERATION}-{uuid.uuid4().hex[:8]}"
    answered: set[str] = set()

    def on_answer(
        _ch: BlockingChannel, _m: Basic.Deliver, _p: pika.BasicProperties, body: bytes
    ) -> None:
        answer = json.loads(body)
        if answer["operation_id"] == run:
            answered.add(answer["host_id"])

    channel.basic_consume(queue, on_answer, auto_ack=True)
    started = time.monotonic()
    for host in hosts:
        install = msg.InstallCertificate(
            operation_id=run, certificate_id=run, alias=ANCHOR_OPERATION, certificate=PEM
        )
        key = msg.InstallCertificate.address(host_id=host.host_id)
        channel.basic_publish(exchange, key, install.model_dump_json().encode())
    while len(answered) < len(hosts):
        if time.monotonic() - started > timeout:
            raise SystemExit(f"anchor: {len(answered)} of {len(hosts)} answered in {timeout:g} s")
        connection.process_data_events(time_limit=0.05)
    elapsed = time.monotonic() - started
    connection.close()
    return elapsed


@dataclass
class Run:
    seconds: float
    states: dict[str, int]
    received: str


def fan_out(client: BusClient, command: Command, timeout: float) -> Run:
    """Publish a command for the zone; the seconds until its reply, and the hosts' states."""
    correlation_id = str(uuid.uuid4())
    started = time.monotonic()
    client.publish(
        command.routing_key,
        command.model_dump_json(exclude_none=True).encode(),
        correlation_id=correlation_id,
        reply_to=DIRECT_REPLY_TO,
    )
    reply: Reply = client.wait_reply(correlation_id, timeout=timeout)
    seconds = time.monotonic() - started
    if reply.result is None:
        raise SystemExit(f"{command.routing_key} failed: {reply.error}")
    states: dict[str, int] = {}
    for host in reply.result["hosts"]:
        states[host["state"]] = states.get(host["state"], 0) + 1
    return Run(seconds, states, RECEIVED.since(started))


def up_hosts(database_url: str) -> int:
    """The zone's hosts Up now, read from the service's own database beside it."""
    engine = create_engine(database_url)
    try:
        with CertificateUnitOfWork(session_factory(engine)) as uow:
            return len(uow.hosts.up_in_zone("zone-1", datetime.now(UTC)))
    finally:
        engine.dispose()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def certificate_service(
    broker: PrivateBroker, data: Path, database: str
) -> Iterator[tuple[ServiceProcess, str]]:
    """The service as deployed: its own process and broker user; SQLite in its data dir, or
    a PostgreSQL database of its own."""
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            url = stack.enter_context(temporary_database())
            env = {"CERTIFICATE_DATABASE_URL": url}
        else:
            url, env = f"sqlite:///{data / SERVICE / 'certificate.db'}", {}
        port = free_port()
        process = ServiceProcess(
            SERVICE,
            clean_env(
                AMQP_URL=account_url(broker.url, service_account(SERVICE, NAMES), "/"),
                DIRECTDL_DATA_DIR=str(data / SERVICE),
                DIRECTDL_LOG_LEVEL="WARNING",
                CERTIFICATE_HEALTH_PORT=str(port),
                **env,
            ),
            port,
            data,
        ).start(timeout=60)
        try:
            yield process, url
        finally:
            process.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between beats")
    parser.add_argument("--runs", type=int, default=3, help="of each command; median, min-max")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 at {GOAL_S:g} s or more")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.hosts + SPARE_FILES:
        raise SystemExit(f"{args.hosts} hosts need {args.hosts + SPARE_FILES} files; limit {hard}")
    with (
        PrivateBroker(file_limit=65536) as broker,
        tempfile.TemporaryDirectory(prefix="directdl-fanout-") as tmp,
    ):
        if broker.open_files_limit() < args.hosts + SPARE_FILES:
            raise SystemExit(f"the broker node may open too few files for {args.hosts} hosts")
        return run(args, broker, Path(tmp))


def run(args: argparse.Namespace, broker: PrivateBroker, data: Path) -> int:
    hosts = [HostIdentity(f"sim-{n:05d}") for n in range(args.hosts)]
    operator = operator_account(NAMES)
    provision_many(
        [
            operator,
            service_account(SERVICE, NAMES),
            *host_accounts([h.host_id for h in hosts], NAMES),
        ],
        node=broker.node,
    )
    sim = SimulatedHosts(
        broker.url,
        hosts,
        args.interval,
        topology=Topology(),
        on_command=answer_as_the_agent_does,
        command_keys=COMMAND_KEYS,
    )
    with certificate_service(broker, data, args.database) as (service, database_url):
        started = time.monotonic()
        with sim:
            print(f"{len(hosts)} hosts connected in {time.monotonic() - started:.1f} s", flush=True)
            wait_until(
                lambda: up_hosts(database_url) == len(hosts),
                timeout=60,
                interval=0.5,
                what=f"the certificate service holds all {len(hosts)} hosts Up",
            )
            results = measure(
                args, broker, service, sim, hosts, account_url(broker.url, operator, "/")
            )
    return report(args, results, sim)


@dataclass
class Results:
    anchor: list[float]
    upload: list[Run]
    revoke: list[Run]
    cpu_seconds: float
    wall_seconds: float


def measure(
    args: argparse.Namespace,
    broker: PrivateBroker,
    service: ServiceProcess,
    sim: SimulatedHosts,
    hosts: list[HostIdentity],
    operator_url: str,
) -> Results:
    """Runs take turns (anchor, upload, revoke), so drift and other load hit them alike."""
    upload = msg.UploadCertificate(name=ALIAS, zone_id="zone-1", hypervisor="KVM", certificate=PEM)
    revoke = msg.RevokeCertificate(name=ALIAS, hypervisor="KVM", zone_id="zone-1")
    results = Results([], [], [], 0.0, 0.0)
    exchange = Topology().exchange
    with BusClient(operator_url, app_id="bench-operator") as client:
        cpu, wall = cpu_seconds(service.pid), time.monotonic()
        for n in range(args.runs):
            results.anchor.append(anchor(broker.url, exchange, hosts, args.timeout))
            RECEIVED.times.clear()
            results.upload.append(fan_out(client, upload, args.timeout))
            wait_for_inventories(sim, lambda h: any(c.alias == ALIAS for c in h.certificates))
            results.revoke.append(fan_out(client, revoke, args.timeout))
            up, down = results.upload[-1], results.revoke[-1]
            print(
                f"run {n + 1}: anchor {results.anchor[-1]:.2f} s; upload {up.seconds:.2f} s "
                f"({up.received}); revoke {down.seconds:.2f} s ({down.received})",
                flush=True,
            )
            wait_for_inventories(sim, lambda h: all(c.alias != ALIAS for c in h.certificates))
        results.cpu_seconds = cpu_seconds(service.pid) - cpu
        results.wall_seconds = time.monotonic() - wall
    return results


def wait_for_inventories(sim: SimulatedHosts, holds: Callable[[SimulatedHost], bool]) -> None:
    """Until every host's store shows what it answered (the next beats carry the inventory)."""
    wait_until(
        lambda: sim.in_loop(lambda: all(holds(h) for h in sim.hosts)),
        timeout=30,
        interval=0.2,
        what="every host's trust store as answered",
    )
    time.sleep(sim.interval)  # one beat each: the inventories that show it reach the service


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  ({min(values):.2f}-{max(values):.2f})"


def report(args: argparse.Namespace, results: Results, sim: SimulatedHosts) -> int:
    expected = {
        "upload": {"UPLOADED": args.hosts},
        "revoke": {"REVOKED": args.hosts},
    }
    print(
        f"\n{args.hosts} hosts beating every {args.interval:g} s, certificate on {args.database}; "
        f"median of {args.runs} (min-max)"
    )
    print(
        f"{'anchor: raw pika, commands to every host queue + answers':<58} {spread(results.anchor)}"
    )
    met = True
    for kind, runs in (("upload", results.upload), ("revoke", results.revoke)):
        correct = all(r.states == expected[kind] for r in runs)
        seconds = [r.seconds for r in runs]
        fast = statistics.median(seconds) < GOAL_S
        met &= correct and fast
        states = "all " + next(iter(expected[kind])) if correct else f"WRONG {runs[-1].states}"
        goal = f"goal < {GOAL_S:g} s: {'yes' if fast else 'NO'}"
        print(
            f"{'directdl cert.' + kind + ' until the reply':<58} {spread(seconds)}  "
            f"{states}, {goal}"
        )
    print(
        f"certificate CPU: {results.cpu_seconds:.1f} s over {results.wall_seconds:.0f} s "
        f"({results.cpu_seconds / results.wall_seconds:.0%} of a core, heartbeats included)"
    )
    stats = sim.stats
    print(
        f"simulator: beats {stats.beats}, inventories {stats.inventories}, inventory requests "
        f"{stats.inventory_requests}, late ticks {stats.late_ticks}, "
        f"max lag {stats.max_lag_s:.3f} s"
    )
    for error in stats.errors[:5]:
        print(f"  error: {error}")
    if stats.late_ticks:
        print("  INVALID: the simulator fell behind its own schedule")
    valid = not (stats.errors or stats.late_ticks)
    return 1 if args.strict and not (met and valid) else 0


if __name__ == "__main__":
    sys.exit(main())
