"""`directdl template prepare`: a template pre-cached on every Up host of a zone, or on some."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from directdl.cli import resolve
from directdl.cli.output import out, print_rows
from directdl.cli.session import Session
from directdl.contracts.prepare import PrepareTemplate

COLUMNS = ("host", "state", "deploy", "code", "message")


def prepare(
    ctx: typer.Context,
    template: Annotated[
        str, typer.Argument(help="Template name in the zone, id, or a unique prefix of the id.")
    ],
    zone: Annotated[str, typer.Option(help="Zone id.")],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Only this host (repeatable); default: every Up host."),
    ] = None,
    pool: Annotated[str | None, typer.Option(help="Primary storage pool id.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every host.")] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
) -> None:
    """Copy a template to every Up host of a zone (or the hosts named), a few at a time as
    directdl.template.prepare.concurrency says; one line per host as its state changes, then
    a table. Hosts that already hold a verified copy are CACHED. The exit code is 0 once
    every host has ended, even when some FAILED: the table says which.

    Example: directdl template prepare centos --zone zone-1 --host kvm-1 --host kvm-2
    """
    session: Session = ctx.obj
    template = resolve.template(session, template, zone)
    command = PrepareTemplate(
        template_id=template, zone_id=zone, host_ids=host or None, pool_id=pool
    )

    def on_progress(_key: str, body: bytes) -> None:
        event: dict[str, Any] = json.loads(body)
        if as_json or (event.get("template_id"), event.get("zone_id")) != (template, zone):
            return
        out.print(Text(progress_line(event)))

    watch = (("template.prepare.progress",), on_progress)
    result = session.call(command, as_json, timeout=timeout, watch=watch)
    if not as_json:
        print_prepared(result)


def progress_line(event: dict[str, Any]) -> str:
    """One host's change: `[done/total] host STATE`, and why when it failed."""
    line = f"[{event['done']}/{event['total']}] {event['host_id']} {event['state']}"
    if event.get("code"):
        line += f" {event['code']}: {event.get('message') or ''}".rstrip()
    return line


def print_prepared(result: dict[str, Any]) -> None:
    hosts = result.get("hosts", [])
    rows = [
        {
            "host": h["host_id"],
            "state": h["state"],
            "deploy": h.get("deploy_id"),
            "code": h.get("code"),
            "message": h.get("message"),
        }
        for h in hosts
    ]
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h["state"]] = counts.get(h["state"], 0) + 1
    caption = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print_rows(rows, COLUMNS, caption=f"prepare {result.get('prepare_id')}: {caption}")
