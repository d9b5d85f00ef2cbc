"""Thousands of hosts beating, through registration, certificate and sync-scheduler."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from directdl.bus.client import BusClient, ReplyTimeout
from directdl.bus.topology import Topology
from directdl.contracts.host import HostHeartbeat
from directdl.contracts.senders import SERVICES
from directdl.contracts.template import ListTemplates, RegisterTemplate
from directdl.runtime.accounts import Names, account_url, operator_account, service_account
from directdl_testing.accounts import host_accounts, provision_many
from directdl_testing.postgres import temporary_database
from directdl_testing.private_broker import PrivateBroker
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.simhosts import HostIdentity, SimulatedHosts

GOAL_P99_MS = 50.0
# File descriptors the node needs beside the hosts' connections: services, tools, files.
SPARE_FILES = 1000
ANCHOR_PREFETCH = 100


@dataclass
class Latencies:
    """template.list round trips from one operator connection, in ms."""

    samples: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)

    def quantiles(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return float("nan"), float("nan")
        cuts = statistics.quantiles(self.samples, n=100, method="inclusive")
        return statistics.median(self.samples), cuts[98]


class Operator(threading.Thread):
    """Lists templates over and over, as an operator's CLI would, while the hosts beat."""

    def __init__(self, url: str, pause: float) -> None:
        super().__init__(name="operator", daemon=True)
        self.url, self.pause = url, pause
        self.latencies = Latencies()
        self.done = threading.Event()

    def run(self) -> None:
        with BusClient(self.url, app_id="bench-operator") as client:
            while not self.done.is_set():
                self.latencies = list_once(client, self.latencies)
                self.done.wait(self.pause)


def list_once(client: BusClient, into: Latencies) -> Latencies:
    started = time.perf_counter()
    try:
        reply = client.call(ListTemplates(), timeout=10)
    except ReplyTimeout:
        into.timeouts += 1
        return into
    into.samples.append((time.perf_counter() - started) * 1000)
    if not reply.ok:
        into.errors.append(str(reply.error))
    return into


def cpu_seconds(pid: int) -> float:
    """User plus system time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heartbeat_queues(broker: PrivateBroker, exchange: str) -> dict[str, str]:
    """Each service's queue bound to `host.heartbeat`, as the broker has it: whatever the
    queue is named (`<service>.events`, or `<service>.hosts` with a batched consumer)."""
    listed = subprocess.run(
        [
            *("rabbitmqctl", "-n", broker.node, "-q", "--no-table-headers", "list_bindings"),
            *("source_name", "routing_key", "destination_name"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    queues = {}
    for line in listed.splitlines():
        source, key, queue = line.split("\t")
        if source == exchange and key == HostHeartbeat.routing_key:
            service = next((s for s in SERVICES if queue.startswith(f"{s}.")), None)
            if service is not None:
                queues[service] = queue
    missing = set(SERVICES) - set(queues)
    if missing:
        raise SystemExit(f"no queue bound to {HostHeartbeat.routing_key} for {sorted(missing)}")
    return queues


def anchor(url: str, messages: int, body: bytes, arguments: dict[str, str]) -> float:
    """Raw pika on the same broker: consume `messages` with manual ack, in msg/s."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    queue = f"bench-anchor-{arguments.get('x-queue-type', 'classic')}"
    channel.queue_declare(queue, durable=True, arguments=dict(arguments))
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    for _ in range(messages):
        channel.basic_publish("", queue, body, props)
    while channel.queue_declare(queue, passive=True).method.message_count < messages:
        connection.process_data_events(time_limit=0.05)
    channel.basic_qos(prefetch_count=ANCHOR_PREFETCH)
    received = [0]

    def on_message(
        ch: BlockingChannel, method: Basic.Deliver, _props: pika.BasicProperties, _body: bytes
    ) -> None:
        ch.basic_ack(method.delivery_tag)
        received[0] += 1

    started = time.perf_counter()
    tag = channel.basic_consume(queue, on_message)
    while received[0] < messages:
        connection.process_data_events(time_limit=1)
    elapsed = time.perf_counter() - started
    channel.basic_cancel(tag)
    channel.queue_delete(queue)
    connection.close()
    return messages / elapsed


@contextlib.contextmanager
def databases(kind: str) -> Iterator[dict[str, str]]:
    """Each service's `<PREFIX>_DATABASE_URL`: none for SQLite in its data dir."""
    if kind == "sqlite":
        yield {}
        return
    with contextlib.ExitStack() as stack:
        yield {
            f"{env_prefix(s)}_DATABASE_URL": stack.enter_context(temporary_database())
            for s in SERVICES
        }


def exit_code(process: ServiceProcess) -> int | None:
    """None while it runs."""
    return None if process.process is None else process.process.poll()


def env_prefix(service: str) -> str:
    return service.replace("-", "_").upper()


def start_services(
    broker: PrivateBroker, data: Path, database_env: dict[str, str]
) -> dict[str, ServiceProcess]:
    names = Names.of(Topology())
    started = {}
    for service in SERVICES:
        account = service_account(service, names)
        port = free_port()
        env = clean_env(
            AMQP_URL=account_url(broker.url, account, "/"),
            DIRECTDL_DATA_DIR=str(data / service),
            DIRECTDL_LOG_LEVEL="WARNING",
            REGISTRATION_CHECK_URLS="false",
            **{f"{env_prefix(service)}_HEALTH_PORT": str(port)},
            **database_env,
        )
        process = ServiceProcess(service.replace("-", "_"), env, port, data)
        started[service] = process.start(timeout=60)
    return started


def register_catalogue(url: str, count: int, zones: int) -> None:
    with BusClient(url, app_id="bench-operator") as client:
        for n in range(count):
            reply = client.call(
                RegisterTemplate(
                    name=f"bench-{n}",
                    url=f"https://images.example/bench-{n}.qcow2",
                    zone_id=f"zone-{n % zones}",
                    hypervisor="KVM",
                    format="QCOW2",
                    validate_url=False,
                )
            )
            if not reply.ok:
                raise SystemExit(f"template.register failed: {reply.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between beats")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--templates", type=int, default=2, help="in each host's inventory")
    parser.add_argument("--catalogue", type=int, default=50, help="templates template.list sees")
    parser.add_argument("--connect-rate", type=float, default=250.0, help="connections/s")
    parser.add_argument("--anchor-messages", type=int, default=50_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    # The simulator holds a connection per host.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.hosts + SPARE_FILES:
        raise SystemExit(f"{args.hosts} hosts need {args.hosts + SPARE_FILES} files; limit {hard}")
    with PrivateBroker(file_limit=65536) as broker:
        limit = broker.open_files_limit()
        if limit < args.hosts + SPARE_FILES:
            raise SystemExit(f"the broker node may open {limit} files: too few for {args.hosts}")
        with (
            tempfile.TemporaryDirectory(prefix="directdl-hb-") as tmp,
            databases(args.database) as db,
        ):
            return run(args, broker, Path(tmp), db)


@dataclass
class Window:
    """What was measured while the hosts beat."""

    seconds: float
    beats: int
    depths: dict[str, list[int]]
    cpu: dict[str, float]
    latencies: Latencies
    exited: dict[str, int]


def run(
    args: argparse.Namespace, broker: PrivateBroker, data: Path, database_env: dict[str, str]
) -> int:
    topology, names = Topology(), Names.of(Topology())
    hosts = [
        HostIdentity(f"sim-{n:05d}", f"zone-{n % args.zones}", f"cluster-{n % args.zones}")
        for n in range(args.hosts)
    ]
    clock = time.monotonic()
    operator = operator_account(names)
    provision_many(
        [
            operator,
            *(service_account(s, names) for s in SERVICES),
            *host_accounts([h.host_id for h in hosts], names),
        ],
        node=broker.node,
    )
    print(f"{len(hosts)} host users provisioned in {time.monotonic() - clock:.1f} s", flush=True)
    services = start_services(broker, data, database_env)
    try:
        queues = heartbeat_queues(broker, topology.exchange)
        operator_url = account_url(broker.url, operator, "/")
        register_catalogue(operator_url, args.catalogue, args.zones)
        sim = SimulatedHosts(
            broker.url, hosts, args.interval, topology=topology,
            connect_rate=args.connect_rate, templates=args.templates,
        )  # fmt: skip
        body = sim.hosts[0].heartbeat_message().model_dump_json().encode()
        anchors = {
            kind: anchor(broker.url, args.anchor_messages, body, arguments)
            for kind, arguments in (("classic", {}), ("quorum", {"x-queue-type": "quorum"}))
        }
        with BusClient(operator_url, app_id="bench-operator") as client:
            idle = Latencies()
            for _ in range(100):
                idle = list_once(client, idle)
        clock = time.monotonic()
        sim.start()
        print(f"{len(hosts)} hosts connected in {time.monotonic() - clock:.1f} s", flush=True)
        try:
            window = measure(args.duration, broker, services, queues, sim, operator_url)
        finally:
            sim.stop()
    finally:
        for process in services.values():
            process.stop()
    ok = report(args, queues, window, anchors, idle, sim)
    return 0 if ok or not args.strict else 1


def measure(
    duration: float,
    broker: PrivateBroker,
    services: dict[str, ServiceProcess],
    queues: dict[str, str],
    sim: SimulatedHosts,
    operator_url: str,
) -> Window:
    """Each heartbeat queue's depth every second, template.list throughout, CPU seconds."""
    pids = {s: p.pid for s, p in services.items()} | {"broker": broker.pid}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    bench_before = time.process_time()
    beats_before, started = sim.stats.beats, time.monotonic()
    operator = Operator(operator_url, pause=0.1)
    operator.start()
    depths: dict[str, list[int]] = {s: [] for s in queues}
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            for service, queue in queues.items():
                declared = channel.queue_declare(queue, passive=True)
                depths[service].append(declared.method.message_count)
            connection.sleep(max(0.0, 1.0 - (time.monotonic() - started - elapsed)))
    finally:
        connection.close()
        operator.done.set()
        operator.join(15)
    seconds = time.monotonic() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["bench (simulator)"] = time.process_time() - bench_before
    exited = {s: code for s, p in services.items() if (code := exit_code(p)) is not None}
    return Window(seconds, sim.stats.beats - beats_before, depths, cpu, operator.latencies, exited)


def report(
    args: argparse.Namespace,
    queues: dict[str, str],
    window: Window,
    anchors: dict[str, float],
    idle: Latencies,
    sim: SimulatedHosts,
) -> bool:
    """Print the table; True when every goal was met by a valid run."""
    seconds = window.seconds
    print(
        f"\n{args.hosts} hosts every {args.interval:g} s: offered {args.hosts / args.interval:,.0f}"
        f" msg/s, sent {window.beats / seconds:,.0f}/s over {seconds:.0f} s ({args.database})"
    )
    print(
        f"{'service':<17} {'heartbeat queue':<22} {'max depth':>9} {'final':>6} "
        f"{'1 interval':>10} {'drained':>7} {'CPU s':>7} {'CPU %':>6}"
    )
    drained_all = True
    for service, queue in queues.items():
        series = window.depths[service] or [0]
        drained = max(series) < args.hosts and service not in window.exited
        drained_all &= drained
        cpu = window.cpu[service]
        print(
            f"{service:<17} {queue:<22} {max(series):>9,} {series[-1]:>6,} {args.hosts:>10,} "
            f"{'yes' if drained else 'NO':>7} {cpu:>7.1f} {cpu / seconds:>6.0%}"
        )
    for name in ("broker", "bench (simulator)"):
        cpu = window.cpu[name]
        print(f"{name:<17} {'':<22} {'':>9} {'':>6} {'':>10} {'':>7} {cpu:>7.1f} ", end="")
        print(f"{cpu / seconds:>6.0%}")
    latencies = window.latencies
    p50, p99 = latencies.quantiles()
    idle50, idle99 = idle.quantiles()
    fast = p99 < GOAL_P99_MS and not latencies.timeouts
    print(
        f"template.list under load: p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal < {GOAL_P99_MS:g} "
        f"ms: {'yes' if fast else 'NO'}), {len(latencies.samples)} calls, "
        f"{latencies.timeouts} timeouts; idle: p50 {idle50:.1f} ms, p99 {idle99:.1f} ms"
    )
    print(
        f"anchor, raw pika consume + manual ack (prefetch {ANCHOR_PREFETCH}, "
        f"{args.anchor_messages:,} heartbeats): "
        + ", ".join(f"{kind} queue {rate:,.0f} msg/s" for kind, rate in anchors.items())
    )
    stats = sim.stats
    print(
        f"simulator: {stats.connected} connected, late ticks {stats.late_ticks}, max lag "
        f"{stats.max_lag_s:.3f} s, inventories {stats.inventories}, inventory requests "
        f"{stats.inventory_requests}, missed {stats.missed}, unroutable {stats.unroutable}"
    )
    for error in [*stats.errors[:5], *latencies.errors[:5]]:
        print(f"  error: {error}")
    for service, code in window.exited.items():
        print(f"  {service} exited with {code} during the run")
    if stats.late_ticks:
        print("  INVALID: the simulator fell behind its own schedule; the figures understate")
    valid = not (stats.errors or stats.late_ticks or latencies.errors or window.exited)
    return valid and drained_all and fast


if __name__ == "__main__":
    sys.exit(main())
