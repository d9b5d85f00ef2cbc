"""What the CLI prints from replies is text: never read as rich markup or emoji codes."""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from directdl.bus.topology import Topology
from directdl.cli import certificates, deploys, output, session, templates, watch
from directdl.cli.session import Session
from directdl.contracts.base import Command
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply
from directdl.contracts.template import ListTemplates

pytestmark = pytest.mark.unit

BRACKETS = "a[/b]"  # a closing tag that opens nothing: rich raised MarkupError
SMILE = "x:smile:y"  # an emoji code
STYLED = "[bold red]not styled[/]"  # markup that parses, and must show as typed
# A SHA-256 fingerprint holding the emoji codes :AB: and :CD:.
FINGERPRINT = "00:AB:11:CD:22:" + ":".join(f"{n:02X}" for n in range(27))
DATA = (BRACKETS, SMILE, STYLED, FINGERPRINT)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def shown(text: str) -> str:
    """The text a reader sees: escape sequences dropped, table borders kept."""
    return _ANSI.sub("", text)


def assert_plain(text: str, *expected: str) -> None:
    text = shown(text)
    for value in expected:
        assert value in text, f"{value!r} not shown as typed in:\n{text}"
    # Anything beyond ASCII may only be the box-drawing of the tables and bars.
    strange = {c for c in text if ord(c) > 0x7F and not 0x2500 <= ord(c) <= 0x259F}
    assert not strange, f"unexpected characters {sorted(strange)} (emoji?) in:\n{text}"


class FakeSession:
    """Stands in for the bus: answers every command with one result."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.commands: list[Command] = []

    def call(self, command: Command, as_json: bool, **_: Any) -> dict[str, Any]:
        self.commands.append(command)
        return self.result


def invoke(app: Any, args: list[str], result: dict[str, Any]) -> str:
    outcome = CliRunner().invoke(app, args, obj=FakeSession(result), catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def template(name: str) -> dict[str, Any]:
    return {
        "id": "6f1c0000-0000-4000-8000-000000000001",
        "name": name,
        "format": "QCOW2",
        "template_type": "USER",
        "protocol": "https",
        "zone_ids": [SMILE, "zone-1"],
        "checksum": "{SHA-256}" + "ab" * 32,
    }


def test_template_list_shows_names_as_typed() -> None:
    items = [template(name) for name in DATA]
    text = invoke(templates.app, ["list"], {"items": items, "total": 4, "page": 1})
    assert_plain(text, *DATA, "4 of 4, page 1")


def test_template_show_prints_the_record_as_typed() -> None:
    text = invoke(
        templates.app,
        ["show", "6f1c0000-0000-4000-8000-000000000001"],
        {"template": template(BRACKETS)},
    )
    assert_plain(text, BRACKETS, SMILE, "{SHA-256}" + "ab" * 32)


def test_cert_upload_shows_the_fingerprint_and_hosts_as_typed(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    reply = {
        "certificate": {
            "id": "c1",
            "alias": SMILE,
            "subject": f"CN={BRACKETS}",
            "fingerprint_sha256": FINGERPRINT,
        },
        "hosts": [{"host_id": BRACKETS, "state": "FAILED", "reason": STYLED}],
    }
    args = ["upload", "--name", "repo", "--zone", "zone-1", "--file", str(pem)]
    assert_plain(invoke(certificates.app, args, reply), *DATA)


def test_cert_list_shows_aliases_and_host_states_as_typed() -> None:
    entry = {
        "certificate": {
            "id": "c1",
            "alias": SMILE,
            "zone_id": BRACKETS,
            "not_after": "2027-01-01",
            "revoked": False,
        },
        "hosts": [{"host_id": STYLED, "state": "UPLOADED"}],
    }
    text = invoke(certificates.app, ["list", "--hosts"], {"items": [entry]})
    assert_plain(text, SMILE, BRACKETS, f"{STYLED}:UPLOADED")


def test_print_record_keys_and_values_are_text(capsys: pytest.CaptureFixture[str]) -> None:
    output.print_record({BRACKETS: SMILE, "fingerprint_sha256": FINGERPRINT, SMILE: [STYLED]})
    assert_plain(capsys.readouterr().out, *DATA)


def test_errors_show_the_message_and_details_as_typed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = f"template {BRACKETS!r} exists; {SMILE} {FINGERPRINT} {STYLED}"
    problems = {"errors": [{"field": BRACKETS, "message": SMILE}]}
    output.print_error("CONFLICT", message, problems)
    err = capsys.readouterr().err
    assert_plain(err, f"error CONFLICT: {message}", f"{BRACKETS}: {SMILE}")


class FailingBus:
    """A BusClient whose every call is answered with one error reply."""

    def __init__(self, *_: Any) -> None:
        pass

    def __enter__(self) -> FailingBus:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def call(self, command: Command, timeout: float) -> Reply:
        return Reply.failure(ErrorCode.CONFLICT, f"name {BRACKETS} {SMILE} {FINGERPRINT} taken")


def test_an_error_reply_is_printed_as_typed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(session, "BusClient", FailingBus)
    cli = Session("amqp://127.0.0.1:1/", Topology(exchange="directdl"), 1.0)
    with pytest.raises(typer.Exit) as exited:
        cli.call(ListTemplates(), as_json=False)
    assert exited.value.exit_code == output.Exit.ERROR_REPLY
    assert_plain(capsys.readouterr().err, f"name {BRACKETS} {SMILE} {FINGERPRINT} taken")


def test_progress_bars_show_host_ids_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    hosts = (BRACKETS, SMILE, STYLED, FINGERPRINT[:14])  # a bar leaves a host id little room
    bars = deploys.progress_bars()
    for host in hosts:
        bars.add_task(host, total=100)
    output.err.print(bars.make_tasks_table(bars.tasks))
    assert_plain(capsys.readouterr().err, *hosts)


def test_hosts_are_listed_as_typed() -> None:
    host = {
        "host_id": BRACKETS,
        "zone_id": SMILE,
        "state": STYLED,
        "last_seen": "now",
        "pools": [{"free_bytes": 2**30}],
        "templates": [],
    }
    app = typer.Typer()
    app.command()(deploys.hosts)
    assert_plain(invoke(app, [], {"items": [host]}), BRACKETS, SMILE, STYLED, "1.0 GiB")


def test_events_show_routing_key_and_body_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    output.out.print(watch.event_line(f"template.{BRACKETS}", {"name": SMILE, "fp": FINGERPRINT}))
    text = capsys.readouterr().out
    assert_plain(text, f"template.{BRACKETS} ", f'"name": "{SMILE}"', FINGERPRINT)
