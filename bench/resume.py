"""Bytes nginx sends for a deploy whose agent is SIGKILLed once mid-download, as a multiple of
the file: the agent resuming its partial, against the same kill with the partial thrown away
(what the agent did before it kept partials, and what a fresh download costs)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.deploy import DeployTemplate
from directdl.contracts.host import ListHosts
from directdl.contracts.senders import host_user
from directdl.contracts.template import RegisterTemplate, TemplateFormat
from directdl_testing.accounts import TestAccounts
from directdl_testing.broker import resolve_broker_url
from directdl_testing.isolation import remove_topology, unique_topology
from directdl_testing.nginx import Nginx
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

MIB = 1 << 20
GOAL = 1.05
HOST = "host-1"
# Silent this long, a host is Down (3 beats): longer than the agent's restart takes.
BEAT_S = "5"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rate", default="64m", help="nginx's limit_rate (default 64m)")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share downloaded (0.4)")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 above {GOAL}x")
    args = parser.parse_args()

    url, release = resolve_broker_url()
    accounts = TestAccounts(url)
    accounts.provision()
    topology = unique_topology()
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    data = os.urandom(args.size_mib * MIB)
    print(f"{args.size_mib} MiB at {args.rate}/s, SIGKILL at {args.kill_at:.0%}, restart after 1 s")
    try:
        with Nginx(slow_rate=args.rate) as nginx:
            nginx.add_file("bench.raw", data)
            rows = {
                keep: run(
                    accounts, topology, work / f"keep-{keep}", nginx, data, args.kill_at, keep
                )
                for keep in (False, True)
            }
    finally:
        remove_topology(accounts.admin_url, topology)
        shutil.rmtree(work, ignore_errors=True)
        release()
    anchor, resumed = rows[False], rows[True]
    print(f"{'partial thrown away (anchor)':<34}{anchor:>8.3f}x the file")
    print(f"{'partial resumed (directdl)':<34}{resumed:>8.3f}x the file   goal <= {GOAL}x")
    return 1 if args.strict and resumed > GOAL else 0


def run(
    accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
    nginx: Nginx,
    data: bytes,
    kill_at: float,
    keep_partial: bool,
) -> float:
    """One deploy on one host, its agent SIGKILLed at `kill_at` of the file and started again
    a second later; returns what nginx sent for it over the file's size."""
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True)
    name = f"bench-{uuid.uuid4().hex[:8]}.raw"
    (nginx.root / name).symlink_to(nginx.root / "bench.raw")

    def service(module: str, user: str, prefix: str, **env: str) -> ServiceProcess:
        port = free_port()
        base = clean_env(
            AMQP_URL=accounts.url(user),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=str(data_dir / module),
            **{f"{prefix}_HEALTH_PORT": str(port)},
            **env,
        )
        return ServiceProcess(module, base, port, log_dir)

    registration = service("registration", "registration", "REGISTRATION")
    agent = service(
        "host_agent",
        host_user(HOST),
        "HOST_AGENT",
        HOST_AGENT_HOST_ID=HOST,
        HOST_AGENT_HEARTBEAT_INTERVAL=BEAT_S,
    )
    pool = data_dir / "host_agent" / "pools" / HOST
    try:
        registration.start()
        agent.start()
        with (
            BusClient(accounts.admin_url, topology, app_id="bench") as client,
            MessageRecorder(accounts.admin_url, topology, "template.download.progress") as seen,
        ):
            registered = client.call(
                RegisterTemplate(
                    name=name,
                    url=f"{nginx.http_url}/slow/{name}",
                    zone_id="zone-1",
                    hypervisor="KVM",
                    format=TemplateFormat.RAW,
                    checksum="{SHA-256}" + hashlib.sha256(data).hexdigest(),
                ),
                timeout=30,
            )
            if not registered.ok or registered.result is None:
                raise RuntimeError(f"registration refused the template: {registered.error}")
            template_id = str(registered.result["template"]["id"])

            def host_up() -> bool:
                hosts = client.call(ListHosts(), timeout=10)
                return bool(hosts.ok and hosts.result and hosts.result["items"])

            wait_until(host_up, timeout=30, what=f"registration to know {HOST}")
            client.publish(
                DeployTemplate.routing_key,
                DeployTemplate(template_id=template_id, zone_id="zone-1")
                .model_dump_json()
                .encode(),
                reply_to="amq.rabbitmq.reply-to",
                correlation_id="deploy",
            )

            def far_enough() -> bool:
                seen.poll(0.1)
                return any(m.body["bytes_done"] >= kill_at * len(data) for m in seen.messages)

            wait_until(far_enough, timeout=120, what=f"{kill_at:.0%} downloaded")
            agent.kill(signal.SIGKILL)
            if not keep_partial:
                for partial in pool.glob(".*.part"):
                    partial.unlink()
            time.sleep(1)
            agent.start()
            reply = client.wait_reply("deploy", timeout=600)
            if not reply.ok:
                raise RuntimeError(f"the deploy failed: {json.dumps(reply.error)}")
        if (pool / template_id).stat().st_size != len(data):
            raise RuntimeError("the deployed copy is not the file")
    finally:
        agent.stop()
        registration.stop()
    sent = sum(e.body_bytes_sent for e in nginx.access_log_lines() if e.uri.endswith(name))
    return sent / len(data)


if __name__ == "__main__":
    sys.exit(main())
