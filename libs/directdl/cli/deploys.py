"""`directdl template deploy` with a live progress bar, and `directdl hosts`."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from directdl.cli import pools
from directdl.cli.output import Exit, err, print_error, print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import deploy as msg
from directdl.contracts.errors import ErrorCode
from directdl.contracts.host import ListHosts
from directdl.contracts.template import ListTemplates

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]


def deploy(
    ctx: typer.Context,
    template: Annotated[str, typer.Option(help="Template id, or its name in the zone.")],
    zone: Annotated[str, typer.Option(help="Zone id.")],
    host: Annotated[str | None, typer.Option(help="Deploy on this host only.")] = None,
    pool: Annotated[str | None, typer.Option(help="Primary storage pool id.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the outcome, showing progress.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 3600.0,
    as_json: Json = False,
) -> None:
    """Download a template straight into a host's primary storage, showing progress.

    Example: directdl template deploy --template 6f1c... --zone zone-1
    """
    session: Session = ctx.obj
    template = _template_id(session, template, zone)
    command = msg.DeployTemplate(template_id=template, zone_id=zone, host_id=host, pool_id=pool)
    if not wait:
        message_id = session.send(command)
        print(json.dumps({"message_id": message_id}) if as_json else f"submitted {message_id}")
        return
    with progress_bars(disable=as_json) as bars:
        tasks: dict[str, TaskID] = {}

        def on_progress(_key: str, body: bytes) -> None:
            event: dict[str, Any] = json.loads(body)
            if event.get("template_id") != template:
                return
            job = event["job_id"]
            if job not in tasks:
                tasks[job] = bars.add_task(str(event["host_id"]), total=event.get("total"))
            bars.update(tasks[job], completed=event["bytes_done"], total=event.get("total"))

        result = session.call(
            command, as_json, timeout=timeout, watch=(("template.download.progress",), on_progress)
        )
    if not as_json:
        shown = {k: v for k, v in result.items() if k != "attempts"}
        shown["attempts"] = ", ".join(f"{a['host_id']}:{a['state']}" for a in result["attempts"])
        print_record(shown, title="deployed")


def progress_bars(disable: bool = False) -> Progress:
    """One bar a download, on stderr, described by its host id."""
    return Progress(
        # The description is a host id: data, so neither markup nor emoji codes.
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
        transient=True,
    )


def _template_id(session: Session, id_or_name: str, zone: str) -> str:
    """Ids are what the services take; a name, unique in its zone, is friendlier to type."""
    try:
        uuid.UUID(id_or_name)
    except ValueError:
        found = session.call(ListTemplates(name=id_or_name, zone_id=zone), as_json=False)
        if found["total"] != 1:
            print_error(ErrorCode.NOT_FOUND, f"no template named {id_or_name!r} in zone {zone!r}")
            raise typer.Exit(Exit.ERROR_REPLY) from None
        return str(found["items"][0]["id"])
    return id_or_name


def hosts(
    ctx: typer.Context,
    zone: Annotated[str | None, typer.Option(help="Only this zone.")] = None,
    copies: Annotated[
        bool,
        typer.Option(
            "--templates", help="Also each template copy in each pool: size, last use, digests."
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """List the hosts known from their heartbeats, and with --templates what their pools hold.

    Example: directdl hosts --zone zone-1 --templates
    """
    session: Session = ctx.obj
    result = session.call(ListHosts(zone_id=zone), as_json)
    if as_json:
        return
    rows = [
        {
            "host": h["host_id"],
            "zone": h["zone_id"],
            "state": h["state"],
            "last_seen": h["last_seen"],
            "free": _gib(sum(p["free_bytes"] for p in h["pools"])),
            "templates": len(h["templates"]),
        }
        for h in result["items"]
    ]
    print_rows(rows, ("host", "zone", "state", "last_seen", "free", "templates"))
    if copies:
        pools.print_copies(result["items"])


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
