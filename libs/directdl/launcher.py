"""`make run`: every service as a local process, as compose would run them, and an nginx with
a sample template; Ctrl-C stops all."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlsplit

from directdl.bus.connection import broker_user
from directdl.bus.topology import Topology
from directdl.contracts.base import EXCHANGE
from directdl.runtime.accounts import (
    ADMIN,
    ProvisioningError,
    account_url,
    deployment,
    provision,
)
from directdl.runtime.settings import DEFAULT_AMQP_URL
from directdl.testing.nginx import Nginx

SAMPLE = "sample.raw"
SAMPLE_SIZE = 1 << 20
SAMPLE_PORTS = (8070, 8443)


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)


def _agent(host_id: str, port: int) -> Process:
    env = {
        "HOST_AGENT_HOST_ID": host_id,
        "HOST_AGENT_ZONE_ID": "zone-1",
        "HOST_AGENT_CLUSTER_ID": "cluster-1",
        "HOST_AGENT_POOL_ID": f"pool-{host_id}",
        "HOST_AGENT_HEALTH_PORT": str(port),
    }
    return Process(f"host-agent-{host_id}", "host_agent", env)


# The same processes and settings as compose.yaml, with embedded databases: two host agents
# in one zone, each with its own pool under the data directory.
PROCESSES = (
    Process("registration", "registration"),
    Process("certificate", "certificate"),
    Process("sync-scheduler", "sync_scheduler"),
    _agent("host-1", 8090),
    _agent("host-2", 8091),
)


def serve_samples(data_dir: Path, stack: ExitStack) -> None:
    """A sample template over HTTP and HTTPS for the quickstart, as compose's nginx serves it.
    Its self-signed certificate is written beside it for `directdl cert upload`."""
    if shutil.which("nginx") is None:
        print(
            "nginx is not installed: no sample template (bash .ci/run installs it)", file=sys.stderr
        )
        return
    server = stack.enter_context(Nginx(ports=SAMPLE_PORTS))
    server.add_file(SAMPLE, sample_bytes())
    folder = data_dir / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.cert_pem_path, folder / "sample-ca.pem")
    print(
        f"sample template at {server.http_url}/{SAMPLE} and {server.https_url}/{SAMPLE}; "
        f"its certificate is {folder / 'sample-ca.pem'}",
        file=sys.stderr,
    )


def sample_bytes() -> bytes:
    """1 MiB that is the same on every run, so its checksum can be printed in the README."""
    block = hashlib.sha256(b"directdl sample template").digest()
    return block * (SAMPLE_SIZE // len(block))


def provision_users(base_url: str) -> dict[str, str]:
    """Every process's own broker user, created on the local broker as compose's
    definitions.json creates them; returns each process's AMQP URL. The user of `base_url`
    keeps administering the vhost, so that the CLI and the README's pika example work."""
    topology = Topology(
        os.environ.get("DIRECTDL_EXCHANGE", EXCHANGE), os.environ.get("DIRECTDL_QUEUE_PREFIX", "")
    )
    hosts = [p.env["HOST_AGENT_HOST_ID"] for p in PROCESSES if "HOST_AGENT_HOST_ID" in p.env]
    accounts = [a for a in deployment(hosts, topology) if a.user != ADMIN]
    vhost = unquote(urlsplit(base_url).path[1:]) or "/"
    administrator = {"user": broker_user(base_url), "vhost": vhost} | {
        "configure": ".*",
        "write": ".*",
        "read": ".*",
    }
    provision(accounts, vhost, extra={"permissions": [administrator]})
    return {a.user: account_url(base_url, a) for a in accounts}


def main() -> int:
    base_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    try:
        urls = provision_users(base_url)
    except (ProvisioningError, OSError) as err:
        print(
            f"cannot create the services' broker users on the local broker: {err}. "
            "`make run` administers the broker at AMQP_URL with rabbitmqctl, as root "
            "(`make deps` installs and starts one).",
            file=sys.stderr,
        )
        return 1
    with ExitStack() as stack:
        serve_samples(Path(os.environ.get("DIRECTDL_DATA_DIR", "var")), stack)
        return supervise(urls)


def supervise(urls: dict[str, str]) -> int:
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for process in PROCESSES:
        # Each process connects as its own user: what it publishes carries that name.
        env = os.environ | process.env | {"AMQP_URL": urls[process.name]}
        children[process.name] = subprocess.Popen([sys.executable, "-m", process.module], env=env)
        print(f"started {process.name} (pid {children[process.name].pid})", file=sys.stderr)
    status = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the rest", file=sys.stderr)
                status, stopping = 1, True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=40)
        except subprocess.TimeoutExpired:
            child.kill()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
