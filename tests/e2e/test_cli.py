"""The `directdl` command as a user runs it, against the registration service in its own process."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import pytest

from directdl.bus.topology import Topology

if TYPE_CHECKING:
    from directdl_testing.processes import ServiceProcess
    from tests.e2e.conftest import Cli, CliResult

pytestmark = pytest.mark.e2e

NAME = "e2e-centos-9"
ZONE = "zone-1"
URL = "https://images.example/centos-9.qcow2"
CHECKSUM = "{SHA-256}" + "ab" * 32


def register_args(name: str = NAME, url: str = URL, *extra: str) -> list[str]:
    return [
        "template",
        "register",
        "--name",
        name,
        "--zone",
        ZONE,
        "--format",
        "QCOW2",
        "--url",
        url,
        "--checksum",
        CHECKSUM,
        *extra,
    ]


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def test_template_lifecycle(cli: Cli, registration_process: ServiceProcess) -> None:
    registered = ok(cli(*register_args(), "--json")).json()
    assert registered["ok"] is True
    template = registered["result"]["template"]
    assert (template["name"], template["zone_ids"], template["checksum"]) == (
        NAME,
        [ZONE],
        CHECKSUM,
    )
    template_id = template["id"]

    listed = ok(cli("template", "list", "--json")).json()
    assert listed["ok"] is True
    assert [t["id"] for t in listed["result"]["items"]] == [template_id]
    assert listed["result"]["total"] == 1

    shown = ok(cli("template", "show", template_id, "--json")).json()
    assert shown["result"]["template"]["name"] == NAME

    updated = ok(cli("template", "update", template_id, "--type", "SYSTEM", "--json")).json()
    assert updated["result"]["template"]["template_type"] == "SYSTEM"
    shown = ok(cli("template", "show", template_id, "--json")).json()
    assert shown["result"]["template"]["template_type"] == "SYSTEM"

    # Without --json, people get a rich table (on a terminal wide enough for it).
    table = ok(cli("template", "list", env={"COLUMNS": "200"}))
    assert NAME in table.stdout
    assert template_id in table.stdout
    assert "1 of 1" in table.stdout

    deleted = ok(cli("template", "delete", template_id, "--json")).json()
    assert deleted["result"]["template"]["id"] == template_id
    listed = ok(cli("template", "list", "--json")).json()
    assert listed["result"] == {"items": [], "total": 0, "page": 1, "page_size": 50}


def test_error_replies_exit_1_with_their_code(
    cli: Cli, registration_process: ServiceProcess
) -> None:
    ok(cli(*register_args()))

    taken = cli(*register_args())
    assert taken.code == 1, taken
    assert "CONFLICT" in taken.message
    assert NAME in taken.message

    ftp = cli(*register_args("e2e-ftp", "ftp://images.example/centos-9.qcow2"))
    assert ftp.code == 1, ftp
    assert "UNSUPPORTED" in ftp.message
    assert "ftp" in ftp.message

    missing = cli("template", "show", "nonexistent")
    assert missing.code == 1, missing
    assert "NOT_FOUND" in missing.message
    assert "nonexistent" in missing.message

    # With --json the error reply goes to stdout, still with exit code 1.
    as_json = cli("template", "show", "nonexistent", "--json")
    assert as_json.code == 1, as_json
    assert as_json.json()["error"]["code"] == "NOT_FOUND"


def test_plain_list_keeps_whole_names_at_80_columns(
    cli: Cli, registration_process: ServiceProcess
) -> None:
    template_id = ok(cli(*register_args(), "--json")).json()["result"]["template"]["id"]
    table = ok(cli("template", "list", env={"COLUMNS": "80"}))
    assert NAME in table.stdout
    assert template_id in table.stdout


def test_exchange_nobody_declared_exits_4(cli: Cli, topology: Topology) -> None:
    # No service ever ran against this topology, so its exchange does not exist: the broker
    # closes the channel with 404 NOT_FOUND on publish, which must not read as a crash.
    result = cli("template", "list")
    assert result.code == 4, result
    assert "UNREACHABLE" in result.message
    assert "Traceback" not in result.stderr
    assert (
        "nothing consumes 'template.list'" in result.message
        or f"no exchange '{topology.exchange}'" in result.message
    ), result.message


def test_no_reply_in_time_exits_3(cli: Cli, registration_process: ServiceProcess) -> None:
    registration_process.kill(signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = cli("--timeout", "1", "template", "list")
        elapsed = time.monotonic() - started
    finally:
        registration_process.kill(signal.SIGCONT)
    assert result.code == 3, result
    assert "TIMEOUT" in result.message
    assert "within 1 s" in result.message
    assert elapsed < 10, f"--timeout 1 took {elapsed:.1f} s"
    # Once continued, the service answers again.
    registration_process.wait_ready()
    ok(cli("template", "list"))


def test_unreachable_broker_exits_4(cli: Cli) -> None:
    result = cli("--amqp-url", "amqp://guest:guest@127.0.0.1:1/", "template", "list")
    assert result.code == 4, result
    assert "UNREACHABLE" in result.message
    assert "127.0.0.1:1" in result.message
    assert "guest:guest" not in result.message  # the password is redacted
