"""`directdl template evict` and `directdl hosts --templates`: arguments, waiting, rendering."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from directdl.bus.topology import Topology
from directdl.cli import deploys, output, pools, session
from directdl.cli.session import Session, Watch
from directdl.contracts.base import Command
from directdl.contracts.pool import (
    CopiesRemoved,
    EvictionRequested,
    EvictTemplate,
    KeptCopy,
    RemovalReason,
    RemovedCopy,
)
from directdl.contracts.reply import Reply
from tests.unit.cli.test_plain_output import BRACKETS, SMILE, STYLED, assert_plain, shown

pytestmark = pytest.mark.unit

TEMPLATE = "6f1c0000-0000-4000-8000-000000000001"
OTHER = "7a2b0000-0000-4000-8000-000000000002"
GIB = 2**30


def removed(
    host: str,
    *copies: tuple[str, int, RemovalReason],
    kept: Sequence[tuple[str, str]] = (),
) -> CopiesRemoved:
    return CopiesRemoved(
        host_id=host,
        pool_id=f"pool-{host}",
        removed=[
            RemovedCopy(template_id=t, path=f"/pools/{host}/{t}", size=s, reason=r)
            for t, s, r in copies
        ],
        kept=[KeptCopy(template_id=t, reason=why) for t, why in kept],
        freed_bytes=sum(s for _, s, _ in copies),
    )


def asked(*hosts: str, copies: int = 1) -> dict[str, Any]:
    return EvictionRequested(hosts=list(hosts), copies=copies).model_dump(mode="json")


class FakeSession:
    """Stands in for the bus: answers the command with `result`; while watching, delivers
    `early` as if published before the reply and `later` while the CLI waits after it."""

    def __init__(
        self,
        result: dict[str, Any],
        later: Sequence[CopiesRemoved] = (),
        early: Sequence[CopiesRemoved] = (),
    ) -> None:
        self.result = result
        self.later = list(later)
        self.early = list(early)
        self.commands: list[Command] = []
        self.patterns: tuple[str, ...] = ()
        self.waited: float | None = None

    def call(self, command: Command, as_json: bool, **_: Any) -> dict[str, Any]:
        self.commands.append(command)
        return self.result

    @contextmanager
    def watching(self, watch: Watch) -> Iterator[FakeConversation]:
        self.patterns = watch[0]
        yield FakeConversation(self, watch[1])


class FakeConversation:
    def __init__(self, fake: FakeSession, deliver: Callable[[str, bytes], None]) -> None:
        self.fake = fake
        self.deliver = deliver

    def call(self, command: Command, as_json: bool, **_: Any) -> dict[str, Any]:
        self._publish(self.fake.early)
        return self.fake.call(command, as_json)

    def wait(self, done: Callable[[], bool], seconds: float) -> bool:
        self.fake.waited = seconds
        self._publish(self.fake.later)
        return done()

    def _publish(self, events: Sequence[CopiesRemoved]) -> None:
        for event in events:
            self.deliver(event.routing_key, event.model_dump_json().encode())


def evict_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(pools.evict)
    return app


def run_evict(fake: FakeSession, *args: str) -> Result:
    return CliRunner().invoke(evict_app(), list(args), obj=fake, catch_exceptions=False)


def test_evict_without_template_host_or_zone_is_a_usage_error_and_sends_nothing() -> None:
    fake = FakeSession(asked("host-1"))
    outcome = run_evict(fake)
    assert outcome.exit_code == output.Exit.USAGE
    assert "--template, --host or --zone" in shown(outcome.output)
    assert fake.commands == []
    assert fake.patterns == ()


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [(["--host", ""], "--host", "''"), (["--zone", "z" * 300], "--zone", "'zzz")],
)
def test_a_bad_id_names_its_option_and_value(args: list[str], option: str, value: str) -> None:
    fake = FakeSession(asked("host-1"))
    outcome = run_evict(fake, *args)
    assert outcome.exit_code == output.Exit.USAGE
    text = shown(outcome.output)
    assert f"Invalid value for {option}" in text
    assert value in text
    assert fake.commands == []


def test_no_wait_sends_the_command_and_names_the_hosts_asked() -> None:
    fake = FakeSession(asked("host-1", "host-2", copies=3))
    outcome = run_evict(fake, "--template", TEMPLATE, "--zone", "zone-1", "--no-wait")
    assert outcome.exit_code == 0, outcome.output
    assert fake.commands == [EvictTemplate(template_id=TEMPLATE, zone_id="zone-1")]
    assert fake.patterns == ()  # nothing watched
    assert "asked 2 hosts, holding 3 copies by their last heartbeats: host-1, host-2" in (
        outcome.stdout
    )


def test_wait_shows_what_each_host_removed_and_kept() -> None:
    one = removed(
        "host-1",
        (TEMPLATE, 3 * GIB // 2, RemovalReason.REQUESTED),
        (OTHER, 300 * 2**20, RemovalReason.REQUESTED),
    )
    two = removed("host-2", kept=[(TEMPLATE, "a download or deploy uses it")])
    fake = FakeSession(asked("host-1", "host-2", copies=3), later=[two], early=[one])
    outcome = run_evict(fake, "--zone", "zone-1", "--timeout", "5")
    assert outcome.exit_code == 0, outcome.output
    assert fake.patterns == ("template.copies.removed",)
    assert fake.commands == [EvictTemplate(zone_id="zone-1")]
    assert fake.waited is not None and 0 < fake.waited <= 5
    lines = outcome.stdout.splitlines()
    assert lines[0].startswith("asked 2 hosts")
    [row1] = [line for line in lines if "host-1" in line and "pool-host-1" in line]
    assert f"{TEMPLATE} (1.5 GiB, REQUESTED); {OTHER} (300.0 MiB, REQUESTED)" in row1
    assert "1.8 GiB" in row1  # freed
    [row2] = [line for line in lines if "pool-host-2" in line]
    assert f"{TEMPLATE} (a download or deploy uses it)" in row2
    assert "0 B" in row2


def test_a_host_that_does_not_answer_in_time_exits_3_naming_it() -> None:
    fake = FakeSession(asked("host-1", "host-2"), later=[removed("host-1")])
    outcome = run_evict(fake, "--host", "host-2", "--timeout", "0.5")
    assert outcome.exit_code == output.Exit.NO_REPLY
    assert "TIMEOUT" in outcome.stderr
    assert "no answer within 0.5 s from host-2;" in outcome.stderr
    assert "host-1" not in outcome.stderr
    [row] = [line for line in outcome.stdout.splitlines() if "host-2" in line and "(no" in line]
    assert "(no answer in time)" in row


def test_wait_with_json_prints_one_document_with_the_answers() -> None:
    answer = removed("host-1", (TEMPLATE, 10, RemovalReason.REQUESTED))
    fake = FakeSession(asked("host-1", "host-2"), later=[answer])
    outcome = run_evict(fake, "--template", TEMPLATE, "--json")
    assert outcome.exit_code == output.Exit.NO_REPLY
    document = json.loads(outcome.stdout)
    assert document["ok"] is True
    assert document["result"] == asked("host-1", "host-2")
    assert document["answers"] == [answer.model_dump(mode="json")]
    assert document["no_answer"] == ["host-2"]


@pytest.mark.parametrize(
    "event",
    [
        removed("host-1", (TEMPLATE, 1, RemovalReason.CAP)),  # the cache's own limits
        removed("host-1", (TEMPLATE, 1, RemovalReason.AGE)),
        removed("host-1", (TEMPLATE, 1, RemovalReason.DELETED)),  # a deleted template
        removed("host-1", (OTHER, 1, RemovalReason.REQUESTED)),  # another eviction
        removed("host-1", kept=[(OTHER, "in use")]),
    ],
)
def test_events_that_cannot_answer_this_eviction_are_not_taken_for_it(
    event: CopiesRemoved,
) -> None:
    answers = pools.Answers(TEMPLATE)
    answers.record(event.routing_key, event.model_dump_json().encode())
    answers.record("template.copies.removed", b"{not json")
    answers.expect(["host-1"])
    assert answers.missing() == ["host-1"]
    assert not answers.complete()


def test_only_the_hosts_asked_count_and_the_first_answer_is_kept() -> None:
    answers = pools.Answers(None)
    first = removed("host-1", (TEMPLATE, 1, RemovalReason.REQUESTED))
    for event in (removed("host-9"), first, removed("host-1")):
        answers.record(event.routing_key, event.model_dump_json().encode())
    assert not answers.complete()  # until the reply names the hosts
    answers.expect(["host-1"])
    assert answers.complete()
    assert answers.received() == [first]


def test_no_host_asked_needs_no_wait() -> None:
    fake = FakeSession(asked(copies=0))
    outcome = run_evict(fake, "--template", TEMPLATE)
    assert outcome.exit_code == 0, outcome.output
    assert "asked no host" in outcome.stdout


class FakeClient:
    """A BusClient that logs what the CLI does in order, and publishes `events` when pumped."""

    log: list[str]
    events: list[CopiesRemoved]

    def __init__(self, *_: Any) -> None:
        self.on_message: Callable[[str, bytes], None] | None = None

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log.append("closed")

    def watch(self, patterns: tuple[str, ...], on_message: Callable[[str, bytes], None]) -> None:
        self.log.append(f"watch {','.join(patterns)}")
        self.on_message = on_message

    def call(self, command: Command, timeout: float) -> Reply:
        self.log.append(f"call {command.routing_key}")
        return Reply.success(EvictionRequested(hosts=["host-1"], copies=1))

    def pump(self, seconds: float) -> None:
        self.log.append("pump")
        assert self.on_message is not None
        for event in self.events:
            self.on_message(event.routing_key, event.model_dump_json().encode())
        self.events = []


@pytest.mark.parametrize("answered", [True, False])
def test_the_queue_is_bound_before_the_command_is_sent(
    monkeypatch: pytest.MonkeyPatch, answered: bool
) -> None:
    FakeClient.log = []
    FakeClient.events = [removed("host-1")] if answered else []
    monkeypatch.setattr(session, "BusClient", FakeClient)
    cli = Session("amqp://127.0.0.1:1/", Topology(exchange="directdl"), 1.0)
    outcome = CliRunner().invoke(
        evict_app(), ["--host", "host-1", "--timeout", "0.3"], obj=cli, catch_exceptions=False
    )
    assert outcome.exit_code == (0 if answered else output.Exit.NO_REPLY), outcome.output
    assert FakeClient.log[:3] == ["watch template.copies.removed", "call template.evict", "pump"]
    assert FakeClient.log[-1] == "closed"
    if answered:
        assert FakeClient.log.count("pump") == 1  # done as soon as every host answered


def hosts_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(deploys.hosts)
    return app


def host_view(host: str, *copies: dict[str, Any]) -> dict[str, Any]:
    return {
        "host_id": host,
        "zone_id": "zone-1",
        "state": "Up",
        "last_seen": "now",
        "pools": [{"pool_id": "pool-a", "capacity_bytes": 10 * GIB, "free_bytes": GIB}],
        "templates": list(copies),
    }


def stored(template_id: str, pool: str = "pool-a", **extra: Any) -> dict[str, Any]:
    return {
        "template_id": template_id,
        "pool_id": pool,
        "path": f"/pools/{pool}/{template_id}",
        "size": 5 * 2**20,
        "digest": "{SHA-256}" + "ab" * 32,
    } | extra


def test_hosts_templates_shows_each_copy_by_host_and_pool() -> None:
    used = (datetime.now(UTC) - timedelta(minutes=3, seconds=5)).isoformat()
    reply = {
        "items": [
            host_view(
                "host-1",
                stored(OTHER, "pool-b"),
                stored(TEMPLATE, last_used_at=used, image_digest="{SHA-256}" + "cd" * 32),
            ),
            host_view("host-2"),
        ]
    }
    outcome = CliRunner().invoke(
        hosts_app(), ["--templates"], obj=FakeSession(reply), catch_exceptions=False
    )
    assert outcome.exit_code == 0, outcome.output
    lines = [line for line in outcome.stdout.splitlines() if TEMPLATE in line or OTHER in line]
    assert [TEMPLATE in lines[0], OTHER in lines[1]] == [True, True]  # pool-a before pool-b
    first = lines[0]
    for part in ("host-1", "pool-a", "5.0 MiB", "3 min ago", "{SHA-256}abababababab..."):
        assert part in first, first
    assert "{SHA-256}cdcdcdcdcdcd..." in first
    assert "pool-b" in lines[1] and " - " in lines[1]  # never used, no image digest
    assert "2 copies, 10.0 MiB" in outcome.stdout


def test_hosts_without_templates_lists_no_copies() -> None:
    reply = {"items": [host_view("host-1", stored(TEMPLATE))]}
    outcome = CliRunner().invoke(hosts_app(), [], obj=FakeSession(reply), catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    assert TEMPLATE not in outcome.stdout


def test_copies_and_answers_are_shown_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    pools.print_copies([host_view(BRACKETS, stored(SMILE, STYLED, image_digest=STYLED))])
    event = removed(SMILE, (BRACKETS, 1, RemovalReason.REQUESTED), kept=[(STYLED, SMILE)])
    output.print_rows([pools.answer_row(event)], pools.ANSWER_COLUMNS)
    assert_plain(capsys.readouterr().out, BRACKETS, SMILE, STYLED)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"), (2**50, "1.0 PiB")],
)
def test_human_size(size: int, text: str) -> None:
    assert output.human_size(size) == text


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (None, "-"),
        ("2026-05-01T11:59:58+00:00", "2 s ago"),
        ("2026-05-01T11:57:00+00:00", "3 min ago"),
        ("2026-05-01T11:57:00", "3 min ago"),  # naive: UTC
        ("2026-05-01T14:00:00+02:00", "0 s ago"),  # the same instant, another offset
        ("2026-05-01T07:00:00+00:00", "5 h ago"),
        ("2026-04-30T12:00:00+00:00", "1 day ago"),
        ("2026-04-20T12:00:00+00:00", "11 days ago"),
        ("2026-05-01T12:00:30+00:00", "0 s ago"),  # a clock a little ahead
    ],
)
def test_ago(when: str | None, text: str) -> None:
    assert output.ago(when, NOW) == text


@pytest.mark.parametrize(
    ("digest", "text"),
    [
        (None, "-"),
        ("{SHA-256}" + "ab" * 32, "{SHA-256}abababababab..."),
        ("{MD5}abcd", "{MD5}abcd"),
        ("0123456789abcdef", "0123456789ab..."),
    ],
)
def test_short_digest(digest: str | None, text: str) -> None:
    assert output.short_digest(digest) == text
