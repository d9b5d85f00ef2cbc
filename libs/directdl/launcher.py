"""`make run`: every service as a local process, as compose would run them; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType


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


def main() -> int:
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for process in PROCESSES:
        env = os.environ | process.env
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
