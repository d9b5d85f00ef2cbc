"""`directdl template prepare`: the command sent, a line per host change, the final table."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from directdl.cli import prepare
from directdl.cli.session import Watch
from directdl.contracts.base import Command
from directdl.contracts.prepare import (
    PreparedHost,
    PrepareResult,
    PrepareState,
    PrepareTemplate,
    TemplatePrepareProgress,
)

pytestmark = pytest.mark.unit

TEMPLATE = "6f1c0000-0000-4000-8000-000000000001"
OTHER = "7a2b0000-0000-4000-8000-000000000002"


def progress(
    host: str, state: PrepareState, done: int, template: str = TEMPLATE, **kw: Any
) -> TemplatePrepareProgress:
    return TemplatePrepareProgress(
        prepare_id="p1",
        template_id=template,
        zone_id="zone-1",
        host_id=host,
        state=state,
        done=done,
        total=2,
        **kw,
    )


RESULT = PrepareResult(
    prepare_id="p1",
    template_id=TEMPLATE,
    zone_id="zone-1",
    hosts=[
        PreparedHost(host_id="kvm-1", state=PrepareState.CACHED, deploy_id="d1"),
        PreparedHost(
            host_id="kvm-2", state=PrepareState.FAILED, deploy_id="d2", code="TLS", message="bad"
        ),
    ],
).model_dump(mode="json")

EVENTS = [
    progress("kvm-1", PrepareState.RUNNING, 0),
    progress("kvm-2", PrepareState.RUNNING, 0),
    progress("other", PrepareState.RUNNING, 0, template=OTHER),  # another prepare's
    progress("kvm-1", PrepareState.CACHED, 1),
    progress("kvm-2", PrepareState.FAILED, 2, code="TLS", message="bad"),
]


class FakeSession:
    """Answers with RESULT, delivering EVENTS to the watch first, as the bus would."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.watched: tuple[str, ...] = ()

    def call(
        self, command: Command, as_json: bool, *, timeout: float, watch: Watch | None = None
    ) -> dict[str, Any]:
        self.commands.append(command)
        assert watch is not None
        self.watched = watch[0]
        for event in EVENTS:
            watch[1](event.routing_key, event.model_dump_json().encode())
        if as_json:
            print(json.dumps({"ok": True, "result": RESULT}))
        return RESULT


def run(fake: FakeSession, *args: str) -> Result:
    app = typer.Typer()
    app.command()(prepare.prepare)
    return CliRunner().invoke(app, list(args), obj=fake, catch_exceptions=False)


def test_prepare_sends_the_hosts_named_and_prints_each_change_then_a_table() -> None:
    fake = FakeSession()
    outcome = run(fake, TEMPLATE, "--zone", "zone-1", "--host", "kvm-1", "--host", "kvm-2")
    assert outcome.exit_code == 0, outcome.output
    assert fake.commands == [
        PrepareTemplate(template_id=TEMPLATE, zone_id="zone-1", host_ids=["kvm-1", "kvm-2"])
    ]
    assert fake.watched == ("template.prepare.progress",)
    lines = outcome.stdout.splitlines()
    assert lines[:4] == [
        "[0/2] kvm-1 RUNNING",
        "[0/2] kvm-2 RUNNING",
        "[1/2] kvm-1 CACHED",
        "[2/2] kvm-2 FAILED TLS: bad",
    ]
    assert "other" not in outcome.stdout
    table = "\n".join(lines[4:])
    assert "kvm-1" in table and "CACHED" in table and "d2" in table
    assert "1 CACHED, 1 FAILED" in table


def test_without_hosts_every_up_host_is_asked_for_and_json_prints_the_reply_alone() -> None:
    fake = FakeSession()
    outcome = run(fake, TEMPLATE, "--zone", "zone-1", "--json")
    assert outcome.exit_code == 0, outcome.output
    [command] = fake.commands
    assert isinstance(command, PrepareTemplate) and command.host_ids is None
    assert json.loads(outcome.stdout)["result"]["prepare_id"] == "p1"
