"""A cached deploy's round trip, registration and a host agent as processes, against a 3-hop
raw-pika echo with confirms and the same echo on directdl's bus; and concurrent deploys of one
template sharing one download."""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from directdl.bus.topology import Topology
from directdl.contracts.deploy import DeployTemplate
from directdl.contracts.host import HostState, ListHosts
from directdl.contracts.template import RegisterTemplate
from directdl.runtime.logging import configure_logging
from directdl.runtime.settings import DEFAULT_AMQP_URL
from directdl_testing.accounts import TestAccounts
from directdl_testing.bus_echo import BUS_ECHO_REQUEST, EchoRequest, bus_echo_hops
from directdl_testing.isolation import remove_topology, unique_topology
from directdl_testing.nginx import Nginx
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.round_trips import ECHO_REQUEST, Operator, echo_hops
from directdl_testing.waiting import wait_until

VHOST = "directdl-bench"
HOST_ID = "host-1"  # one of isolation.HOST_IDS, so that its queues are removed at the end
ZONE_ID = "zone-1"
ECHO_BODY = b"x" * 700  # about a DownloadTemplate's or a DownloadCompleted's size
RATIO_GOAL = 2.0  # the deploy's p99 against the echo's
WARM_UP = 20
START_TIMEOUT_S = 60.0
DEPLOY = "directdl: cached template.deploy (3 hops)"
ECHO = "raw pika: 3-hop echo with confirms"
BUS_ECHO = "directdl bus: 3-hop echo, no other work"


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest rank: of 300 samples, p99 is the 297th smallest."""
    ranked = sorted(samples)
    return ranked[max(0, math.ceil(len(ranked) * p / 100) - 1)]


def qcow2(path: Path, size: str) -> bytes:
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(path), size], check=True, capture_output=True
    )
    return path.read_bytes()


def register(operator: Operator, name: str, url: str, data: bytes) -> str:
    command = RegisterTemplate(
        name=name,
        url=url,
        zone_id=ZONE_ID,
        hypervisor="KVM",
        format="QCOW2",
        checksum="{SHA-256}" + hashlib.sha256(data).hexdigest(),
    )
    return str(operator.call(command)["template"]["id"])


def deploy_body(template_id: str) -> bytes:
    return (
        DeployTemplate(template_id=template_id, zone_id=ZONE_ID)
        .model_dump_json(exclude_none=True)
        .encode()
    )


RoundTrip = Callable[[], tuple[float, dict[str, Any]]]


def taking_turns(trips: dict[str, RoundTrip], count: int) -> dict[str, list[float]]:
    """`count` round trips of each, one of each in turn, so that drift and other load on
    the machine hit them alike; milliseconds, after WARM_UP of each."""
    samples: dict[str, list[float]] = {label: [] for label in trips}
    for n in range(WARM_UP + count):
        for label, one in trips.items():
            seconds, reply = one()
            if not reply.get("ok"):
                raise SystemExit(f"{label}: a round trip failed: {reply.get('error')}")
            if n >= WARM_UP:
                samples[label].append(seconds * 1000)
    for label, ms in samples.items():
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        print(f"{label:<44} {p50:>7.1f} {p99:>7.1f} {max(ms):>7.1f}", flush=True)
    return samples


@contextmanager
def services(
    accounts: TestAccounts, topology: Topology, tmp: Path, log_level: str
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Registration and one host agent as they are deployed: processes of their own, each
    its own broker user, SQLite in a temporary directory."""

    def start(module: str, user: str, prefix: str, **extra: str) -> ServiceProcess:
        port = free_port()
        env = clean_env(
            AMQP_URL=accounts.url(user),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=str(tmp / module),
            DIRECTDL_LOG_LEVEL=log_level,
            **{f"{prefix}_HEALTH_PORT": str(port)},
            **extra,
        )
        # A loaded 2-core machine may take longer than the tests allow to start one.
        return ServiceProcess(module, env, port, tmp).start(timeout=START_TIMEOUT_S)

    with ExitStack() as stack:
        registration = start("registration", "registration", "REGISTRATION")
        stack.callback(registration.stop)
        agent = start(
            "host_agent",
            f"host-agent-{HOST_ID}",
            "HOST_AGENT",
            HOST_AGENT_HOST_ID=HOST_ID,
            HOST_AGENT_ZONE_ID=ZONE_ID,
            HOST_AGENT_POOL_ID=f"pool-{HOST_ID}",
        )
        stack.callback(agent.stop)
        yield registration, agent


def wait_host_up(operator: Operator) -> None:
    def up() -> bool:
        hosts = operator.call(ListHosts(zone_id=ZONE_ID))["items"]
        return any(h["host_id"] == HOST_ID and h["state"] == HostState.UP for h in hosts)

    wait_until(up, timeout=30, interval=0.2, what=f"{HOST_ID} Up in registration")


def concurrent_deploys(
    operator: Operator, nginx: Nginx, tmp: Path, count: int, timeout: float
) -> tuple[int, int]:
    """`count` deploys of one template not yet on the pool, sent at once; the downloads
    nginx served, and the deploys answered as cached. Served slowly, so that every deploy
    arrives while the first download runs."""
    data = qcow2(tmp / "fresh.qcow2", "128M")
    nginx.add_file("fresh.qcow2", data)
    template_id = register(operator, "fresh", f"{nginx.http_url}/slow/fresh.qcow2", data)
    ids = [operator.send("template.deploy", deploy_body(template_id)) for _ in range(count)]
    replies = operator.wait(ids, timeout)
    failed = [r["error"] for r in replies if not r.get("ok")]
    if failed:
        raise SystemExit(f"concurrent deploys: {len(failed)} failed, the first: {failed[0]}")
    downloads = sum(
        1 for e in nginx.access_log_lines() if e.uri == "/slow/fresh.qcow2" and e.method == "GET"
    )
    return downloads, sum(1 for r in replies if r["result"]["cached"])


def cached_deploy(operator: Operator, template_id: str, timeout: float) -> RoundTrip:
    body = deploy_body(template_id)

    def one() -> tuple[float, dict[str, Any]]:
        seconds, reply = operator.round_trip("template.deploy", body, timeout)
        if reply.get("ok") and not reply["result"]["cached"]:
            raise SystemExit(f"a deploy of {template_id} was not served from the cache")
        return seconds, reply

    return one


HOPS = (
    ("operator -> registration", None),
    ("registration: template.deploy", "template.deploy"),
    ("relay -> agent", None),
    ("agent: template.download", f"host.{HOST_ID}.template.download"),
    ("relay -> registration", None),
    ("registration: download.completed", "template.download.completed"),
    ("relay -> operator", None),
)


def breakdown(
    operator: Operator, correlation_ids: Sequence[str], logs: Sequence[ServiceProcess]
) -> None:
    """Where each deploy's time went, from the services' `message.handled` debug lines
    (stamped when the handler's transaction has committed, with its duration): each handler,
    and the gaps between them (the relay's wake-up, claim and publish, the broker, and the
    consumer's hand-over to a worker)."""
    handled: dict[tuple[str, str], tuple[float, float]] = {}
    for service in logs:
        for record in service.find_logs("message.handled"):
            end = datetime.fromisoformat(record["timestamp"]).timestamp()
            seconds = record["duration_ms"] / 1000
            key = (record.get("correlation_id", ""), record.get("routing_key", ""))
            handled[key] = (end - seconds, end)
    rows: list[list[float]] = [[] for _ in HOPS]
    for cid in correlation_ids:
        marks = [operator.sent[cid]]
        spans = [handled.get((cid, key)) for _label, key in HOPS if key]
        if None in spans:
            continue
        for start, end in spans:  # type: ignore[misc]
            marks += [start, end]
        marks.append(operator.replies[cid][0])
        for row, (a, b) in zip(rows, pairwise(marks), strict=True):
            row.append((b - a) * 1000)
    print(f"\nwhere a cached deploy's time goes ({len(rows[0])} deploys), ms:")
    print(f"{'':<44} {'p50':>7} {'p99':>7}")
    for (label, _key), row in zip(HOPS, rows, strict=True):
        if row:
            print(f"{label:<44} {percentile(row, 50):>7.2f} {percentile(row, 99):>7.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="round trips per measurement")
    parser.add_argument("--concurrent", type=int, default=8, help="deploys of a new template")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per reply")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="run the services at DEBUG and print where each deploy's time goes",
    )
    parser.add_argument(
        "--keep", type=Path, help="a directory for the services' data and logs, kept after"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit 1 when p99 > {RATIO_GOAL:g}x the echo's, or concurrent deploys shared no "
        "download",
    )
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    accounts = TestAccounts(os.environ.get("AMQP_URL", DEFAULT_AMQP_URL), vhost=VHOST)
    accounts.provision()
    topology = unique_topology()
    try:
        with ExitStack() as stack:
            tmp = args.keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
            nginx = stack.enter_context(Nginx())
            met = run_all(args, accounts, topology, nginx, Path(tmp))
    finally:
        remove_topology(accounts.admin_url, topology)
    return 1 if args.strict and not met else 0


def run_all(
    args: argparse.Namespace, accounts: TestAccounts, topology: Topology, nginx: Nginx, tmp: Path
) -> bool:
    """Measure and print; whether every goal was met."""
    level = "DEBUG" if args.breakdown else "WARNING"
    print(f"{args.count} sequential round trips of each, taking turns, after {WARM_UP}; ms")
    print(f"{'':<44} {'p50':>7} {'p99':>7} {'max':>7}")
    with (
        services(accounts, topology, tmp, level) as (registration, agent),
        echo_hops(accounts.admin_url, topology),
        bus_echo_hops(accounts.admin_url, topology, tmp),
    ):
        operator = Operator(accounts.url("cli"), topology.exchange)
        echo = Operator(accounts.admin_url, topology.exchange)
        bus_body = EchoRequest(payload=ECHO_BODY.decode()).model_dump_json().encode()
        wait_host_up(operator)
        data = qcow2(tmp / "cached.qcow2", "64M")
        nginx.add_file("cached.qcow2", data)
        template_id = register(operator, "cached", f"{nginx.http_url}/cached.qcow2", data)
        first = operator.call(DeployTemplate(template_id=template_id, zone_id=ZONE_ID))
        assert not first["cached"], first
        before = len(operator.sent)
        samples = taking_turns(
            {
                DEPLOY: cached_deploy(operator, template_id, args.timeout),
                ECHO: lambda: echo.round_trip(ECHO_REQUEST, ECHO_BODY, args.timeout),
                BUS_ECHO: lambda: echo.round_trip(BUS_ECHO_REQUEST, bus_body, args.timeout),
            },
            args.count,
        )
        timed_ids = list(operator.sent)[before + WARM_UP :]
        downloads, cached = concurrent_deploys(operator, nginx, tmp, args.concurrent, args.timeout)
        echo.close()
    ratio = percentile(samples[DEPLOY], 99) / percentile(samples[ECHO], 99)
    for label, row in (("deploy", DEPLOY), ("bus echo", BUS_ECHO)):
        p99, p50 = (percentile(samples[row], p) / percentile(samples[ECHO], p) for p in (99, 50))
        goal = f" (goal <= {RATIO_GOAL:g}x)" if row == DEPLOY else ""
        print(f"{label} to raw echo: p99 {p99:.2f}x{goal}, p50 {p50:.2f}x")
    # Other load on the machine stretches the echo's tail more than the deploy's p50.
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print(
        f"{args.concurrent} concurrent deploys of a new template: {downloads} download(s), "
        f"{cached} served from the cache (goal 1 and {args.concurrent - 1})"
    )
    if args.breakdown:
        breakdown(operator, timed_ids, (registration, agent))
    operator.close()
    return ratio <= RATIO_GOAL and (downloads, cached) == (1, args.concurrent - 1)


if __name__ == "__main__":
    sys.exit(main())
