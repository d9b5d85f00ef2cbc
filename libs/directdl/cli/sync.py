"""`directdl sync run` and `directdl zone enable|disable`: the certificate sync."""

from __future__ import annotations

from typing import Annotated

import typer

from directdl.cli.output import print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import sync as msg

app = typer.Typer(help="Bring hosts' trust stores in line with their zone.", no_args_is_help=True)
zones = typer.Typer(help="Include or leave out zones from certificate sync.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]


@app.command(epilog="Example: directdl sync run --zone zone-1")
def run(
    ctx: typer.Context,
    zone: Annotated[str | None, typer.Option(help="Only this zone.")] = None,
    as_json: Json = False,
) -> None:
    """Run a sync now and show its report."""
    session: Session = ctx.obj
    result = session.call(msg.RunSync(zone_id=zone), as_json)
    if not as_json:
        print_record(result, title="sync run")


@zones.command(epilog="Example: directdl zone enable zone-1")
def enable(ctx: typer.Context, zone: str, as_json: Json = False) -> None:
    """Include a zone in certificate sync."""
    session: Session = ctx.obj
    result = session.call(msg.EnableZone(zone_id=zone), as_json)
    if not as_json:
        print_record(result)


@zones.command(epilog="Example: directdl zone disable zone-1")
def disable(ctx: typer.Context, zone: str, as_json: Json = False) -> None:
    """Leave a zone out of certificate sync."""
    session: Session = ctx.obj
    result = session.call(msg.DisableZone(zone_id=zone), as_json)
    if not as_json:
        print_record(result)


@zones.command("list", epilog="Example: directdl zone list")
def list_zones(ctx: typer.Context, as_json: Json = False) -> None:
    """The zones known from their hosts, and whether each is in certificate sync."""
    session: Session = ctx.obj
    result = session.call(msg.ListZones(), as_json)
    if not as_json:
        print_rows(result["items"], ("zone_id", "enabled"), caption=f"{len(result['items'])} zones")
