"""The e2e fixtures: services as separate processes, each its own broker user, and the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.topology import Topology
from directdl.contracts.senders import host_user
from directdl_testing.accounts import TestAccounts
from directdl_testing.processes import ServiceProcess, clean_env, free_port

CLI_TIMEOUT_S = 30.0

StartService = Callable[..., ServiceProcess]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Teardown of the service fixtures reads this to decide whether to print the logs.
    setattr(item, f"e2e_report_{report.when}", report)
    return report


@pytest.fixture
def make_run_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held while a test runs what `make run` runs, on the fixed ports the README names:
    two such tests on two xdist workers would otherwise take each other's ports."""
    # The parent of a worker's base temp is shared by every worker of this session.
    lock = tmp_path_factory.getbasetemp().parent / "make-run-ports.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


@pytest.fixture
def start_service(
    request: pytest.FixtureRequest,
    broker_accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
) -> Iterator[StartService]:
    """A factory: `start_service("registration", extra_env={...})` returns a ready process.

    Every process it started is stopped at teardown, whether the test passed or not.
    """
    started: list[ServiceProcess] = []
    log_dir = data_dir.parent / "logs"
    log_dir.mkdir(exist_ok=True)

    def start(
        module: str = "registration",
        env_prefix: str = "REGISTRATION",
        extra_env: Mapping[str, str] | None = None,
    ) -> ServiceProcess:
        port = free_port()
        env = clean_env(
            # Each service connects as its own broker user, as in a deployment.
            AMQP_URL=broker_accounts.url(broker_user_of(module, extra_env or {})),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=str(data_dir / module),
            # The tests wait for per-message log lines (message.handled), which are debug.
            DIRECTDL_LOG_LEVEL="DEBUG",
            **{f"{env_prefix}_HEALTH_PORT": str(port)},
        )
        service = ServiceProcess(module, env, port, log_dir)
        started.append(service)
        return service.start(extra_env)

    yield start

    failed = any(
        getattr(getattr(request.node, f"e2e_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    errors: list[BaseException] = []
    for service in started:
        try:
            code = service.stop()
        except BaseException as err:  # still stop the others; re-raised below
            errors.append(err)
            continue
        if failed:
            print(f"\n{service.module} exited with {code}; {service.log_tail()}", file=sys.stderr)
    if errors:
        raise errors[0]


def broker_user_of(module: str, env: Mapping[str, str]) -> str:
    if module == "host_agent":
        return host_user(env["HOST_AGENT_HOST_ID"])
    return module.replace("_", "-")


@pytest.fixture
def registration_process(start_service: StartService) -> ServiceProcess:
    # These tests register made-up URLs; tests/e2e/test_deploy.py checks real ones.
    return start_service("registration", extra_env={"REGISTRATION_CHECK_URLS": "false"})


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """stderr with rich's line wrapping (80 columns when not on a TTY) undone."""
        return " ".join(self.stderr.split())

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., CliResult]


@pytest.fixture(scope="session")
def directdl_script() -> str:
    # main.py has no __main__ guard, so the console script is the way to run the CLI.
    script = shutil.which("directdl", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.fail(
            f"no `directdl` console script beside {sys.executable}: run `make install`",
            pytrace=False,
        )
    return script


@pytest.fixture
def cli(directdl_script: str, broker_accounts: TestAccounts, topology: Topology) -> Cli:
    """`cli("template", "list")` runs `directdl` on the test's broker and exchange.

    Its output is not a TTY, so rich renders 80 columns wide unless `env` sets COLUMNS.
    """

    def run(*args: str, env: Mapping[str, str] | None = None) -> CliResult:
        base = clean_env(AMQP_URL=broker_accounts.url("cli"), DIRECTDL_EXCHANGE=topology.exchange)
        done = subprocess.run(
            [directdl_script, *args],
            env=base | dict(env or {}),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
