"""`directdl template evict`, and the copies each pool holds for `directdl hosts --templates`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.text import Text

from directdl.cli import resolve
from directdl.cli.output import (
    Exit,
    ago,
    human_size,
    out,
    print_error,
    print_json,
    print_rows,
    short_digest,
)
from directdl.cli.session import Session
from directdl.contracts.errors import ErrorCode
from directdl.contracts.pool import CopiesRemoved, EvictTemplate, RemovalReason

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
# The option that gives each field of EvictTemplate, to name the one a bad value came from.
OPTIONS = {"template_id": "--template", "host_id": "--host", "zone_id": "--zone"}
ANSWER_COLUMNS = ("host", "pool", "removed", "kept", "freed")
COPY_COLUMNS = ("host", "pool", "template", "size", "last_used", "digest", "image_digest")


def evict(
    ctx: typer.Context,
    template: Annotated[
        str | None,
        typer.Option(help="Template name, id or unique id prefix: its copies, wherever they are."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Only this host's pool.")] = None,
    zone: Annotated[str | None, typer.Option(help="Only the hosts of this zone.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for each host to say what it removed.")] = True,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the reply and every host's answer.", min=0.1)
    ] = 60.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the reply as JSON; with --wait, with the hosts' answers."
        ),
    ] = False,
) -> None:
    """Remove copies from the hosts' pools: a template's, a host's or a zone's, or where
    these meet. Copies a download or a deploy is using stay, and the host says so.

    Exits 3, naming them, when some host asked did not answer in time.

    Example: directdl template evict --template 6f1c... --zone zone-1
    """
    evict_command(template, host, zone)  # usage errors first, before any look-up
    session: Session = ctx.obj
    if template is not None:
        template = resolve.template(session, template, zone)
    command = evict_command(template, host, zone)
    if not wait:
        result = session.call(command, as_json, timeout=timeout)
        if not as_json:
            print_asked(result)
        return
    answers = Answers(template)
    deadline = time.monotonic() + timeout
    with session.watching(((CopiesRemoved.routing_key,), answers.record)) as bus:
        result = bus.call(command, as_json, timeout=timeout, echo=False)
        answers.expect(result["hosts"])
        if not as_json:
            print_asked(result)
        bus.wait(answers.complete, deadline - time.monotonic())
    report(result, answers, as_json, timeout)


def evict_command(template: str | None, host: str | None, zone: str | None) -> EvictTemplate:
    """The command, or a usage error (exit 2) before anything is sent."""
    if template is None and host is None and zone is None:
        raise typer.BadParameter(
            "name what to evict: give --template, --host or --zone (several narrow it)"
        )
    values = {"template_id": template, "host_id": host, "zone_id": zone}
    try:
        return EvictTemplate.model_validate(values)
    except ValidationError as err:
        problem = err.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        raise typer.BadParameter(
            f"{values.get(field)!r}: {problem['msg']}", param_hint=OPTIONS.get(field)
        ) from None


class Answers:
    """The template.copies.removed of each host asked, recorded from before the command is
    sent: a host may answer before the reply naming it arrives."""

    def __init__(self, template_id: str | None) -> None:
        self.template_id = template_id
        self.hosts: list[str] | None = None  # known once the reply names them
        self.by_host: dict[str, CopiesRemoved] = {}

    def record(self, _routing_key: str, body: bytes) -> None:
        try:
            event = CopiesRemoved.model_validate_json(body)
        except ValidationError:
            return  # not an answer this CLI can read; the services log what they refuse
        if event.host_id not in self.by_host and answers_eviction(event, self.template_id):
            self.by_host[event.host_id] = event

    def expect(self, hosts: list[str]) -> None:
        self.hosts = list(hosts)

    def complete(self) -> bool:
        return self.hosts is not None and not self.missing()

    def missing(self) -> list[str]:
        return [h for h in self.hosts or [] if h not in self.by_host]

    def received(self) -> list[CopiesRemoved]:
        return [self.by_host[h] for h in self.hosts or [] if h in self.by_host]


def answers_eviction(event: CopiesRemoved, template_id: str | None) -> bool:
    """Whether an event can be the answer to this eviction. The CLI sees no request id in
    it, so it tells an answer from the cache's own evictions (CAP, AGE) and from a deleted
    template's (DELETED) by the reasons, and by the template when one was named."""
    if any(copy.reason != RemovalReason.REQUESTED for copy in event.removed):
        return False
    listed = [c.template_id for c in event.removed] + [c.template_id for c in event.kept]
    return template_id is None or all(t == template_id for t in listed)


def print_asked(result: dict[str, Any]) -> None:
    hosts: list[str] = result["hosts"]
    if not hosts:
        out.print(Text("asked no host: none is known that could hold such a copy"))
        return
    copies = _count(result["copies"], "copy", "copies")
    out.print(
        Text(
            f"asked {_count(len(hosts), 'host', 'hosts')}, holding {copies} by their last "
            f"heartbeats: {', '.join(hosts)}"
        )
    )


def report(result: dict[str, Any], answers: Answers, as_json: bool, timeout: float) -> None:
    """Each host's answer, then exit 3 naming those that gave none in time."""
    missing = answers.missing()
    if as_json:
        print_json(
            {
                "ok": True,
                "result": result,
                "answers": [a.model_dump(mode="json") for a in answers.received()],
                "no_answer": missing,
            }
        )
    elif result["hosts"]:
        rows = [answer_row(a) for a in answers.received()]
        rows += [{"host": h, "removed": "(no answer in time)"} for h in missing]
        print_rows(rows, ANSWER_COLUMNS)
    if missing:
        print_error(
            ErrorCode.TIMEOUT,
            f"no answer within {timeout:g} s from {', '.join(missing)}; they may still evict",
        )
        raise typer.Exit(Exit.NO_REPLY)


def answer_row(event: CopiesRemoved) -> dict[str, Any]:
    removed = [f"{c.template_id} ({human_size(c.size)}, {c.reason})" for c in event.removed]
    kept = [f"{c.template_id} ({c.reason})" for c in event.kept]
    return {
        "host": event.host_id,
        "pool": event.pool_id,
        # "; " between copies: each one's own details are separated by ", ".
        "removed": "; ".join(removed) or None,
        "kept": "; ".join(kept) or None,
        "freed": human_size(event.freed_bytes),
    }


def print_copies(hosts: list[dict[str, Any]], now: datetime | None = None) -> None:
    """Each copy every pool holds, by host and pool, as the hosts' heartbeats last said."""
    rows = [
        copy_row(host["host_id"], copy, now)
        for host in hosts
        for copy in sorted(host["templates"], key=lambda c: (c["pool_id"], c["template_id"]))
    ]
    total = sum(copy["size"] for host in hosts for copy in host["templates"])
    caption = f"{_count(len(rows), 'copy', 'copies')}, {human_size(total)}"
    print_rows(rows, COPY_COLUMNS, caption=caption)


def copy_row(host_id: str, copy: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    return {
        "host": host_id,
        "pool": copy["pool_id"],
        "template": copy["template_id"],
        "size": human_size(copy["size"]),
        "last_used": ago(copy.get("last_used_at"), now),
        "digest": short_digest(copy["digest"]),
        "image_digest": short_digest(copy.get("image_digest")),
    }


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
