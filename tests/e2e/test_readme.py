"""The README works: `make run`'s processes, then every quickstart command and the pika example."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from directdl.bus.topology import Topology
from directdl_testing.accounts import TestAccounts
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
PORTS = (8081, 8082, 8083, 8084, 8090, 8091)
SAMPLE_URL = "http://127.0.0.1:8088/sample.qcow2"


def block_after(marker: str, language: str) -> str:
    """The first fenced block of `language` after the line containing `marker`."""
    rest = README[README.index(marker) :]
    match = re.search(rf"```{language}\n(.*?)```", rest, re.S)
    assert match, f"no {language} block after {marker!r}"
    return match.group(1)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where a user stands: the README's relative paths (.venv/bin, var/) resolve here."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    return tmp_path


@pytest.fixture
def vhost_url(broker_accounts: TestAccounts) -> Iterator[str]:
    """A vhost of this test's own: the launcher grants its users there as it would on `/`,
    which must not change what the other tests' users may do in theirs."""
    vhost = f"directdl-readme-{uuid.uuid4().hex[:8]}"
    yield urlunsplit(urlsplit(broker_accounts.base_url)._replace(path=f"/{vhost}"))
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, check=False)


@pytest.fixture
def env(vhost_url: str, topology: Topology) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "AMQP_URL": vhost_url,
        "DIRECTDL_EXCHANGE": topology.exchange,
        "DIRECTDL_QUEUE_PREFIX": topology.queue_prefix,
        "HOST_AGENT_HEARTBEAT_INTERVAL": "1",
    }


@pytest.fixture
def make_run(make_run_ports: None, workdir: Path, env: dict[str, str]) -> Iterator[None]:
    """What `make run` starts, with the environment the Makefile gives it. honcho prints every
    process's output, prefixed with its name, to make-run.log."""
    log = workdir / "make-run.log"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "directdl.launcher"],
        cwd=workdir,
        env=env | {"DIRECTDL_DATA_DIR": "var"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            for port in PORTS:
                wait_until(lambda p=port: _ready(p), timeout=30, what=f"/readyz on {port}")
            wait_until(_serves_sample, timeout=10, what=f"the sample template on {SAMPLE_URL}")
        except AssertionError as err:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"{err}; make-run.log ends:\n{tail}") from err
        yield
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            raise


def _serves_sample() -> bool:
    try:
        return requests.head(SAMPLE_URL, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def run(command: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_quickstart_deploys_the_sample_and_trusts_its_certificate_on_both_hosts(
    make_run: None, workdir: Path, env: dict[str, str]
) -> None:
    commands = [line for line in block_after("<!-- quickstart", "sh").splitlines() if line.strip()]
    wait_until(
        lambda: run(commands[0] + " --json", workdir, env).stdout.count('"Up"') == 2, timeout=20
    )
    outputs = {}
    for command in commands:
        done = run(command, workdir, env)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs[" ".join(command.split()[1:3])] = done.stdout
    assert outputs["cert upload"].count("UPLOADED") == 2
    assert "deployed" in outputs["template deploy"]
    assert "host-1:UPLOADED" in outputs["cert list"] and "host-2:UPLOADED" in outputs["cert list"]
    # The pool holds the very bytes served, whose digest is the one the README registers.
    www = workdir / "var" / "templates" / "www"
    sample = (www / "sample.qcow2").read_bytes()
    digest, name = (www / "SHA256SUMS").read_text().split()
    assert (hashlib.sha256(sample).hexdigest(), name) == (digest, "sample.qcow2")
    assert f"--checksum {digest}" in " ".join(commands)
    pools = list((workdir / "var" / "pools").glob("host-*/*"))
    assert len(pools) == 1 and pools[0].read_bytes() == sample

    # The "More" block: every command but `events`, which tails until Ctrl-C and has its own
    # test (tests/e2e/test_operator.py); curl's endpoints are fetched with requests.
    more = block_after("\nMore:", "sh").splitlines()
    for command in (line.split("  #")[0] for line in more if line.startswith(".venv/bin/directdl")):
        if " events " in command:
            continue
        done = run(command, workdir, env)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    for url in re.findall(r"curl -s (\S+?);?(?:\s|$)", "\n".join(more)):
        assert requests.get(f"http://{url}", timeout=5).status_code == 200, url


def test_the_pika_example_gets_a_reply(make_run: None, workdir: Path, env: dict[str, str]) -> None:
    example = block_after("## Publishing a command with plain pika", "python")
    done = subprocess.run(
        [sys.executable, "-c", example],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(eval(done.stdout.strip()))
    assert reply["ok"] is True and reply["result"]["template"]["name"] == "pika"


def test_the_cloudstack_session_runs_with_cs_against_make_run(
    make_run: None, workdir: Path, env: dict[str, str]
) -> None:
    session = block_after("<!-- cloudstack", "sh")
    wait_until(
        lambda: run(".venv/bin/directdl hosts --json", workdir, env).stdout.count('"Up"') == 2
    )
    done = run("set -euo pipefail\n" + session, workdir, env)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    # prepareTemplate's job ended with the template on host-1's pool, at the path the agent
    # wrote (the deletion at the end lets the agents evict it since).
    pool = workdir / "var" / "pools" / "host-1"
    assert f'"path": "{pool}/' in done.stdout and '"downloadState": "DOWNLOADED"' in done.stdout
    assert done.stdout.rstrip().endswith('"success": true\n}')
    assert '"value": "10000"' in done.stdout and '"REVOKED"' in done.stdout
