"""`make run` is quiet when idle: a few short lines at start, then one per event that matters."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from directdl.bus.topology import Topology
from directdl.launcher import read_procfile
from directdl_testing.accounts import TestAccounts
from directdl_testing.processes import clean_env
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv/bin/directdl"
# What the Procfile and compose publish: `make run` cannot share them with anything else.
PORTS = (8080, 8088, 8443, 8081, 8082, 8083, 8084, 8090, 8091)
SERVICES = [name for name, argv in read_procfile().items() if "python" in argv]
IDLE_S = 60
MAX_IDLE_LINES = 10
# honcho's prefix: the time, the process name padded, then "| ".
LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<name>\S+)\s+\| (?P<text>.*)$")


def _busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def vhost_url(broker_accounts: TestAccounts) -> Iterator[str]:
    """A vhost of this test's own: the launcher grants its users there as it would on `/`."""
    vhost = f"directdl-run-{uuid.uuid4().hex[:8]}"
    yield urlunsplit(urlsplit(broker_accounts.base_url)._replace(path=f"/{vhost}"))
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, check=False)


class Run:
    """The launcher's output, as a person watching `make run` sees it, line by line."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def lines(self) -> list[tuple[str, str]]:
        found = (LINE.match(line) for line in self.log.read_text(errors="replace").splitlines())
        return [(m["name"], m["text"]) for m in found if m]

    def saying(self, pattern: str) -> list[tuple[str, str]]:
        return [(name, text) for name, text in self.lines() if re.search(pattern, text)]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


def test_an_idle_make_run_prints_little_and_a_deploy_says_it_started_and_ended(
    make_run_ports: None, tmp_path: Path, vhost_url: str, topology: Topology
) -> None:
    busy = [port for port in PORTS if _busy(port)]
    if busy:
        pytest.skip(f"`make run` needs ports {busy} on 127.0.0.1, and something listens there")
    env = clean_env(
        AMQP_URL=vhost_url,
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=str(tmp_path / "var"),
    )
    log = tmp_path / "make-run.log"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "directdl.launcher"],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    run = Run(log)
    try:
        try:
            wait_until(
                lambda: len(run.saying(r"^service\.ready\b")) >= len(SERVICES),
                timeout=60,
                what="every service's ready line",
            )
            wait_until(lambda: len(run.saying(r"^host\.up\b")) == 2, timeout=30, what="2 hosts Up")
        except AssertionError as err:
            raise AssertionError(f"{err}; make-run.log ends:\n{run.tail()}") from err
        assert sorted(name for name, _ in run.saying(r"^service\.ready\b")) == sorted(SERVICES)
        assert not [line for line in run.lines() if line[1].startswith("{")], "JSON was printed"

        before = len(run.lines())
        time.sleep(IDLE_S)  # the measure itself: what an idle minute prints
        idle = run.lines()[before:]
        assert len(idle) < MAX_IDLE_LINES, "an idle minute printed:\n" + "\n".join(
            f"{name} | {text}" for name, text in idle
        )

        digest = (tmp_path / "var/templates/www/SHA256SUMS").read_text().split()[0]
        cli_env = env | {"DIRECTDL_OUTPUT": "json"}
        register = [
            *("template", "register", "--name", "sample", "--zone", "zone-1"),
            *("--format", "QCOW2", "--url", "http://127.0.0.1:8088/sample.qcow2"),
            *("--checksum", digest),
        ]
        deploy = ["template", "deploy", "--template", "sample", "--zone", "zone-1"]
        for argv in (register, deploy):
            done = subprocess.run(
                [str(CLI), *argv],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        wait_until(lambda: run.saying(r"^deploy\.ended\b"), timeout=30, what="deploy ended")
        assert [name for name, _ in run.saying(r"^deploy\.started\b")] == ["registration"]
        ((_, ended),) = run.saying(r"^deploy\.ended\b")
        assert "warning" not in ended and "host_id=host-" in ended, ended
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            raise
    stopped = {m[1] for _, text in run.lines() if (m := re.match(r"^(\S+) stopped \(rc=", text))}
    assert stopped == set(read_procfile()), run.tail()
    assert not [port for port in PORTS if _busy(port)], "a process of `make run` outlived it"
