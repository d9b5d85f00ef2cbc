"""Every `-o` format of the real CLI against registration and a host agent, and JSON errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from directdl_testing.waiting import wait_until

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, CliResult

pytestmark = pytest.mark.e2e

BEAT = "0.5"
HOST = "host-1"
NAME = "e2e-formats"
SETTING = "direct.download.socket.timeout"
BOX = {chr(c) for c in range(0x2500, 0x2580)}


@dataclass(frozen=True)
class Catalogue:
    """What the formats are tried on: a template registered, a host heard from."""

    template_id: str


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


@pytest.fixture
def catalogue(cli: Cli, start_service: Callable[..., Any]) -> Catalogue:
    start_service(
        "registration",
        extra_env={"REGISTRATION_CHECK_URLS": "false", "REGISTRATION_WATCHDOG_INTERVAL": BEAT},
    )
    start_service(
        "host_agent",
        env_prefix="HOST_AGENT",
        extra_env={
            "HOST_AGENT_HOST_ID": HOST,
            "HOST_AGENT_ZONE_ID": "zone-1",
            "HOST_AGENT_POOL_ID": f"pool-{HOST}",
            "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
        },
    )
    registered = cli(
        "template",
        "register",
        "--name",
        NAME,
        "--zone",
        "zone-1",
        "--format",
        "QCOW2",
        "--url",
        "https://images.example/formats.qcow2",
        "-o",
        "json",
    )
    template_id = str(ok(registered).json()["result"]["template"]["id"])
    wait_until(lambda: ok(cli("hosts", "--json")).json()["result"]["items"], timeout=10)
    return Catalogue(template_id)


def commands(catalogue: Catalogue) -> dict[str, tuple[list[str], str, str]]:
    """Each command tried: its words, a column it shows and the value it must hold."""
    return {
        "template list": (["template", "list"], "id", catalogue.template_id),
        "template show": (["template", "show", catalogue.template_id], "name", NAME),
        "hosts": (["hosts"], "host", HOST),
        "settings list": (["settings", "list"], "name", SETTING),
    }


def test_every_format_of_every_listing(cli: Cli, catalogue: Catalogue) -> None:
    for what, (words, column, value) in commands(catalogue).items():
        table = ok(cli(*words)).stdout
        assert not BOX & set(table), f"{what}: piped table has borders:\n{table}"
        assert any(value in line.split() for line in table.splitlines()), (what, table)

        reply = ok(cli(*words, "-o", "json")).json()
        assert reply["ok"] is True and value in json.dumps(reply["result"]), (what, reply)

        rows = list(csv.DictReader(io.StringIO(ok(cli(*words, "-o", "csv")).stdout)))
        assert value in [row[column] for row in rows], (what, rows)

        lines = ok(cli(*words, "-o", "tsv")).stdout.splitlines()
        header = lines[0].split("\t")
        assert value in [line.split("\t")[header.index(column)] for line in lines[1:]], what

        text = ok(cli(*words, "-o", "text")).stdout
        assert f"{column} = {value}" in text.splitlines(), (what, text)


def test_fields_choose_the_columns_in_every_format(cli: Cli, catalogue: Catalogue) -> None:
    listing = ["template", "list", "--fields", "name,id"]
    assert ok(cli(*listing, "-o", "csv")).stdout.splitlines() == [
        "name,id",
        f"{NAME},{catalogue.template_id}",
    ]
    assert (
        ok(cli(*listing, "-o", "text")).stdout == f"name = {NAME}\nid = {catalogue.template_id}\n"
    )
    items = ok(cli(*listing, "-o", "json")).json()["result"]["items"]
    assert items == [{"name": NAME, "id": catalogue.template_id}]

    unknown = cli("settings", "list", "--fields", "name,colour")
    assert unknown.code == 2, unknown
    assert "'colour'" in unknown.message and "owner" in unknown.message


def test_json_errors_have_the_reply_s_shape(cli: Cli, catalogue: Catalogue) -> None:
    missing = cli("template", "show", "00000000-0000-4000-8000-000000000000", "-o", "json")
    assert missing.code == 1, missing
    assert error_of(missing)["code"] == "NOT_FOUND"

    unreachable = cli(
        "template", "list", "-o", "json", env={"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    )
    assert unreachable.code == 4, unreachable
    assert error_of(unreachable)["code"] == "UNREACHABLE"
    assert "Traceback" not in unreachable.stderr


def error_of(result: CliResult) -> dict[str, Any]:
    reply = result.json()
    assert reply["ok"] is False and set(reply["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = reply["error"]
    return error


def test_status_reads_where_each_health_endpoint_is_from_the_services(
    cli: Cli, catalogue: Catalogue
) -> None:
    report = ok(cli("status", "-o", "json", env={"DIRECTDL_HEALTH_URLS": ""})).json()
    assert report["health_from"] == "announced", report
    assert [(s["service"], s["ready"]) for s in report["services"]] == [
        ("host-agent-host-1", True),
        ("registration", True),
    ]
    assert [h["host_id"] for h in report["hosts"]] == [HOST]
