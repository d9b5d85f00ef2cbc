"""The `directdl` entry point: global options, then one sub-command group per family."""

from __future__ import annotations

from typing import Annotated

import typer

from directdl.bus.topology import Topology
from directdl.cli import certificates, deploys, pools, prepare, settings, sync, templates, watch
from directdl.cli.session import Session
from directdl.runtime.settings import DEFAULT_AMQP_URL

app = typer.Typer(
    name="directdl",
    help="Drive directdl over RabbitMQ: templates, deploys, hosts and certificates.\n\n"
    "Exit codes: 0 ok, 1 the service answered with an error, 2 bad arguments, "
    "3 no reply in time, 4 broker unreachable or nothing consumes the command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
templates.app.command("deploy")(deploys.deploy)
templates.app.command("prepare")(prepare.prepare)
templates.app.command("evict")(pools.evict)
app.add_typer(templates.app, name="template")
app.command("hosts")(deploys.hosts)
app.add_typer(deploys.app, name="deploy")
app.add_typer(certificates.app, name="cert")
app.add_typer(settings.app, name="settings")
app.add_typer(sync.app, name="sync")
app.add_typer(sync.zones, name="zone")
app.command("status")(watch.status)
app.command("events")(watch.events)


@app.callback()
def main(
    ctx: typer.Context,
    amqp_url: Annotated[
        str, typer.Option(envvar="AMQP_URL", help="Broker URL.")
    ] = DEFAULT_AMQP_URL,
    exchange: Annotated[str, typer.Option(envvar="DIRECTDL_EXCHANGE", hidden=True)] = "directdl",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a reply.", min=0.1)] = 30.0,
) -> None:
    ctx.obj = Session(amqp_url, Topology(exchange=exchange), timeout)
