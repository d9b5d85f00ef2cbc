"""`directdl template deploy` (its id, the queued line, Ctrl-C, --no-wait) and
`directdl deploy list|show|follow`, against a fake bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from directdl.bus.client import ReplyTimeout
from directdl.cli import deploys, output
from directdl.cli.session import Watch, _result
from directdl.contracts import deploy as msg
from directdl.contracts.base import Command
from directdl.contracts.download import DownloadProgress
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply
from tests.unit.cli.test_plain_output import shown

pytestmark = pytest.mark.unit

TEMPLATE = "6f1c0000-0000-4000-8000-000000000001"
NOW = "2026-12-02T17:00:00+00:00"
Event = tuple[str, dict[str, Any]]


def attempt(host: str = "host-1", state: str = "RUNNING", **kw: Any) -> dict[str, Any]:
    return {"job_id": f"job-{host}", "host_id": host, "state": state, "started_at": NOW} | kw


def view(deploy_id: str, state: str = "RUNNING", **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "deploy_id": deploy_id,
        "template_id": TEMPLATE,
        "zone_id": "zone-1",
        "state": state,
        "queued": False,
        "host_id": "host-1",
        "created_at": NOW,
        "updated_at": NOW,
        "duration_s": 1.5,
        "attempts": [attempt(state=state)],
    }
    return msg.DeployView.model_validate(fields | kw).model_dump(mode="json")


def progress(deploy_id: str, done: int, host: str = "host-1") -> Event:
    event = DownloadProgress(
        job_id=f"job-{host}",
        deploy_id=deploy_id,
        template_id=TEMPLATE,
        host_id=host,
        pool_id="pool-1",
        bytes_done=done,
        total=4096,
        rate_bps=100.0,
    )
    return event.routing_key, event.model_dump(mode="json")


def ended(deploy_id: str, key: str = msg.TemplateDeployed.routing_key) -> Event:
    return key, {"deploy_id": deploy_id}


class FakeBus:
    """Stands in for the bus: deploy.get answers `views` in turn (the last one again), and
    each wait delivers the next batch of `steps` to what is watched. `template.deploy` is
    answered with `reply` once the steps run out; a KeyboardInterrupt step stands for Ctrl-C."""

    def __init__(
        self,
        views: Sequence[dict[str, Any] | Reply] = (),
        steps: Sequence[Sequence[Event] | type[KeyboardInterrupt]] = (),
        reply: Reply | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        self.views = list(views)
        self.steps = list(steps)
        self.reply = reply
        self.result = result or {}
        self.timeout = 30.0
        self.commands: list[Command] = []
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.patterns: tuple[str, ...] = ()
        self.deliver: Callable[[str, bytes], None] = lambda *_: None

    # Session
    def call(self, command: Command, as_json: bool, **_: Any) -> dict[str, Any]:
        self.commands.append(command)
        if isinstance(command, msg.GetDeploy):
            return _result(self._view(), as_json)
        return _result(Reply.success(self.result), as_json)

    def send(self, command: Command) -> str:
        self.commands.append(command)
        return "message-1"

    @contextmanager
    def watching(self, watch: Watch) -> Iterator[FakeConversation]:
        self.patterns, self.deliver = watch
        yield FakeConversation(self)

    # BusClient
    def publish(self, routing_key: str, body: bytes, **_: Any) -> str:
        self.published.append((routing_key, json.loads(body)))
        return "message-1"

    def wait_reply(self, correlation_id: str, timeout: float, what: str = "") -> Reply:
        if self.step():
            raise ReplyTimeout(what)
        assert self.reply is not None
        return self.reply

    def call_client(self, command: Command, timeout: float = 30.0) -> Reply:
        self.commands.append(command)
        return self._view()

    def step(self) -> bool:
        """Deliver the next batch; False when none is left."""
        if not self.steps:
            return False
        batch = self.steps.pop(0)
        if batch is KeyboardInterrupt:
            raise KeyboardInterrupt
        assert not isinstance(batch, type)
        for key, body in batch:
            self.deliver(key, json.dumps(body).encode())
        return True

    def _view(self) -> Reply:
        current = self.views.pop(0) if len(self.views) > 1 else self.views[0]
        return current if isinstance(current, Reply) else Reply.success(current)


class FakeClient:
    def __init__(self, fake: FakeBus) -> None:
        self.fake = fake
        self.publish = fake.publish
        self.wait_reply = fake.wait_reply
        self.call = fake.call_client


class FakeConversation:
    def __init__(self, fake: FakeBus) -> None:
        self.fake = fake
        self.client = FakeClient(fake)

    def call(self, command: Command, as_json: bool, **_: Any) -> dict[str, Any]:
        return self.fake.call(command, False)  # as echo=False: the CLI prints the result

    def wait(self, done: Callable[[], bool], seconds: float) -> bool:
        self.fake.step()
        return done()


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("deploy")(deploys.deploy)
    app.add_typer(deploys.app, name="d")
    return app


def run(fake: FakeBus, *args: str) -> Result:
    return CliRunner().invoke(cli(), list(args), obj=fake, catch_exceptions=False)


def deploy_args(*extra: str) -> list[str]:
    return ["deploy", "--template", TEMPLATE, "--zone", "zone-1", *extra]


def test_no_wait_prints_the_deploy_id_the_command_carries() -> None:
    fake = FakeBus()
    outcome = run(fake, *deploy_args("--no-wait"))
    assert outcome.exit_code == 0, outcome.output
    [command] = fake.commands
    assert isinstance(command, msg.DeployTemplate)
    assert command.deploy_id is not None and uuid.UUID(command.deploy_id)
    assert outcome.stdout.strip() == command.deploy_id


def test_no_wait_as_json_gives_the_deploy_id_and_the_message_id() -> None:
    fake = FakeBus()
    outcome = run(fake, *deploy_args("--no-wait", "--json"))
    [command] = fake.commands
    assert isinstance(command, msg.DeployTemplate)
    assert json.loads(outcome.stdout) == {
        "deploy_id": command.deploy_id,
        "message_id": "message-1",
    }


def deployed_reply(deploy_id: str) -> Reply:
    fields = {
        "deploy_id": deploy_id,
        "template_id": TEMPLATE,
        "zone_id": "zone-1",
        "host_id": "host-1",
        "pool_id": "pool-1",
        "path": "/pools/1/t",
        "size": 4096,
        "digest": "{SHA-256}" + "ab" * 32,
        "cached": False,
        "duration_s": 2.0,
        "attempts": [attempt(state="SUCCEEDED")],
    }
    return Reply.success(msg.DeployResult.model_validate(fields))


class Deploying(FakeBus):
    """A FakeBus whose views and events name the deploy id the CLI chose, once it chose it."""

    def __init__(self, make: Callable[[str], FakeBus]) -> None:
        super().__init__()
        self.make = make

    def publish(self, routing_key: str, body: bytes, **kw: Any) -> str:
        deploy_id = json.loads(body)["deploy_id"]
        other = self.make(deploy_id)
        self.views, self.steps, self.reply = other.views, other.steps, other.reply
        return super().publish(routing_key, body, **kw)


def test_deploy_prints_its_id_at_once_then_queued_until_progress_then_the_outcome() -> None:
    fake = Deploying(
        lambda d: FakeBus(
            views=[view(d, queued=True)],
            steps=[[], [progress(d, 1024)], [progress(d, 4096)]],
            reply=deployed_reply(d),
        )
    )
    outcome = run(fake, *deploy_args())
    assert outcome.exit_code == 0, outcome.output
    [(key, sent)] = fake.published
    assert key == "template.deploy"
    deploy_id = sent["deploy_id"]
    err = shown(outcome.stderr)
    assert err.startswith(f"deploy {deploy_id}\n")
    assert "queued on host-1 (waiting for a free download worker)" in err
    assert fake.patterns == (
        "template.download.progress",
        "template.deployed",
        "template.deploy.failed",
    )
    assert any(isinstance(c, msg.GetDeploy) and c.deploy_id == deploy_id for c in fake.commands)
    assert "deployed" in shown(outcome.stdout) and "/pools/1/t" in shown(outcome.stdout)


def test_ctrl_c_says_the_deploy_goes_on_and_how_to_follow_it() -> None:
    fake = Deploying(
        lambda d: FakeBus(views=[view(d)], steps=[[progress(d, 10)], KeyboardInterrupt])
    )
    outcome = run(fake, *deploy_args())
    assert outcome.exit_code == 130
    deploy_id = fake.published[0][1]["deploy_id"]
    said = f"the deploy goes on; follow it with: directdl deploy follow {deploy_id}"
    assert said in shown(outcome.stderr)


def test_an_error_reply_is_printed_and_exits_1() -> None:
    fake = Deploying(
        lambda d: FakeBus(
            # Asked before registration recorded the deploy: not an error of the deploy's.
            views=[Reply.failure(ErrorCode.NOT_FOUND, "not yet")],
            steps=[[]],
            reply=Reply.failure(ErrorCode.UNAVAILABLE, "no Up host in zone 'zone-1'"),
        )
    )
    outcome = run(fake, *deploy_args())
    assert outcome.exit_code == output.Exit.ERROR_REPLY
    assert "UNAVAILABLE: no Up host" in shown(outcome.stderr)


def bars() -> deploys.Progress:
    return deploys.progress_bars(disable=True)


def test_the_tracker_keeps_only_its_deploys_events() -> None:
    said: list[str] = []
    tracker = deploys.Tracker("d-1", bars(), say=said.append)
    tracker.seen(view("d-1", queued=True) | {"deploy_id": "d-1"})
    assert said == ["queued on host-1 (waiting for a free download worker)"]
    assert tracker.queued == {"job-host-1"}

    key, body = progress("d-2", 99)
    tracker.record(key, json.dumps(body).encode())
    assert tracker.queued == {"job-host-1"}, "another deploy's progress"
    tracker.record(msg.TemplateDeployed.routing_key, b'{"deploy_id": "d-2"}')
    assert not tracker.done()

    key, body = progress("d-1", 99)
    tracker.record(key, json.dumps(body).encode())
    assert tracker.queued == set()
    task = tracker.bars.tasks[0]
    assert (task.description, task.completed, task.total) == ("host-1", 99, 4096)
    tracker.record(msg.TemplateDeployFailed.routing_key, b'{"deploy_id": "d-1"}')
    assert tracker.done() and tracker.ended_by == "template.deploy.failed"


def test_the_tracker_ignores_what_it_cannot_read() -> None:
    tracker = deploys.Tracker("d-1", bars())
    tracker.record("template.download.progress", b"not json")
    tracker.record("template.download.progress", b"[1, 2]")
    assert not tracker.tasks and not tracker.done()


def test_list_sends_the_filters_and_shows_each_deploy() -> None:
    d1, d2 = str(uuid.uuid4()), str(uuid.uuid4())
    items = [
        view(d1, queued=True),
        view(d2, "FAILED", code="NOT_FOUND", message="404", bytes_done=1024, total=4096),
    ]
    fake = FakeBus(result={"items": items, "total": 7, "page": 2, "page_size": 2})
    outcome = run(
        fake, "d", "list", "--template", TEMPLATE, "--zone", "zone-1", "--host", "host-1",
        "--state", "failed", "--page", "2", "--page-size", "2",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert fake.commands == [
        msg.ListDeploys(
            template_id=TEMPLATE,
            zone_id="zone-1",
            host_id="host-1",
            state=msg.AttemptState.FAILED,
            page=2,
            page_size=2,
        )
    ]
    text = shown(outcome.stdout)
    assert d1 in text and d2 in text
    assert "QUEUED" in text and "1.0 KiB of 4.0 KiB" in text
    assert "2 of 7, page 2" in text


def test_show_gives_bytes_duration_and_the_failure_reason() -> None:
    d = str(uuid.uuid4())
    failed = view(
        d,
        "FAILED",
        code="NOT_FOUND",
        message="deploy failed after 1 attempt(s); last, host-1: NOT_FOUND: 404",
        bytes_done=2048,
        total=4096,
        attempts=[attempt(state="FAILED", error_code="NOT_FOUND", message="404")],
    )
    fake = FakeBus(views=[failed])
    outcome = run(fake, "d", "show", d)
    assert outcome.exit_code == 0, outcome.output
    assert fake.commands == [msg.GetDeploy(deploy_id=d)]
    text = shown(outcome.stdout)
    for part in ("FAILED", "2.0 KiB of 4.0 KiB", "1.5 s", "NOT_FOUND", "last, host-1"):
        assert part in text


def test_show_as_json_prints_the_reply() -> None:
    d = str(uuid.uuid4())
    outcome = run(FakeBus(views=[view(d)]), "d", "show", d, "--json")
    assert json.loads(outcome.stdout)["result"]["deploy_id"] == d


def test_follow_an_ended_deploy_shows_it_and_waits_for_nothing() -> None:
    d = str(uuid.uuid4())
    fake = FakeBus(views=[view(d, "SUCCEEDED", host_id="host-2")], steps=[KeyboardInterrupt])
    outcome = run(fake, "d", "follow", d)
    assert outcome.exit_code == 0, outcome.output
    assert "SUCCEEDED" in shown(outcome.stdout)


def test_follow_a_queued_deploy_until_it_is_deployed() -> None:
    d = str(uuid.uuid4())
    fake = FakeBus(
        views=[view(d, queued=True), view(d, "SUCCEEDED", bytes_done=4096, total=4096)],
        steps=[[progress(d, 2048)], [progress(d, 4096), ended(d)]],
    )
    outcome = run(fake, "d", "follow", d)
    assert outcome.exit_code == 0, outcome.output
    assert fake.patterns[0] == "template.download.progress"
    err = shown(outcome.stderr)
    assert err.count("queued on host-1 (waiting for a free download worker)") == 1
    assert "SUCCEEDED" in shown(outcome.stdout) and "4.0 KiB of 4.0 KiB" in shown(outcome.stdout)


def test_follow_a_deploy_that_fails_exits_1() -> None:
    d = str(uuid.uuid4())
    fake = FakeBus(
        views=[view(d), view(d, "FAILED", code="TLS", message="bad certificate")],
        steps=[[ended(d, msg.TemplateDeployFailed.routing_key)]],
    )
    outcome = run(fake, "d", "show", d, "--follow")
    assert outcome.exit_code == output.Exit.ERROR_REPLY
    assert "bad certificate" in shown(outcome.stdout)


def test_ctrl_c_while_following_leaves_the_deploy_going() -> None:
    d = str(uuid.uuid4())
    outcome = run(FakeBus(views=[view(d)], steps=[KeyboardInterrupt]), "d", "follow", d)
    assert outcome.exit_code == 130
    assert "the deploy goes on" in shown(outcome.stderr)


def test_follow_an_unknown_deploy_is_an_error() -> None:
    d = str(uuid.uuid4())
    fake = FakeBus(views=[Reply.failure(ErrorCode.NOT_FOUND, f"no deploy with id {d!r}")])
    outcome = run(fake, "d", "follow", d)
    assert outcome.exit_code == output.Exit.ERROR_REPLY
    assert "NOT_FOUND" in shown(outcome.stderr)
