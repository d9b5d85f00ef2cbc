"""The `directdl` entry point: global options, then one sub-command group per family."""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import version
from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer.completion import install_callback, show_callback

from directdl.bus.topology import Topology
from directdl.cli import (
    apikeys,
    certificates,
    deploys,
    pools,
    prepare,
    settings,
    sync,
    templates,
    watch,
)
from directdl.cli.formats import FormattedGroup
from directdl.cli.output import out
from directdl.cli.session import Session
from directdl.runtime.settings import DEFAULT_AMQP_URL

app = typer.Typer(
    name="directdl",
    help="Drive directdl over RabbitMQ: templates, deploys, hosts and certificates.\n\n"
    "Exit codes: 0 ok, 1 the service answered with an error, 2 bad arguments, "
    "3 no reply in time, 4 broker unreachable or nothing consumes the command.\n\n"
    "Every command takes -o table|json|csv|tsv|text (or DIRECTDL_OUTPUT) and --fields a,b; "
    "--json is -o json.",
    cls=FormattedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,  # main's own --install-completion and --show-completion instead
)
# What add_completion=True would do besides adding its options: the classes that answer
# the shell's completion requests (_DIRECTDL_COMPLETE=complete_bash ...).
completion_init()
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
app.add_typer(apikeys.app, name="apikey")
app.command("status")(watch.status)
app.command("events")(watch.events)


class Shell(StrEnum):
    """The shells typer writes completion for."""

    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"
    POWERSHELL = "powershell"
    PWSH = "pwsh"


def _print_version(asked: bool) -> None:
    if asked:
        out.print(f"directdl {version('directdl')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    amqp_url: Annotated[
        str, typer.Option(envvar="AMQP_URL", help="Broker URL.")
    ] = DEFAULT_AMQP_URL,
    exchange: Annotated[str, typer.Option(envvar="DIRECTDL_EXCHANGE", hidden=True)] = "directdl",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a reply.", min=0.1)] = 30.0,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    # typer's own completion, but for the shell named: its guess of the shell (from the
    # parent processes) fails where there is none, as in CI or a Dockerfile.
    _install: Annotated[
        Shell | None,
        typer.Option(
            "--install-completion",
            callback=install_callback,
            expose_value=False,
            is_eager=True,
            help="Install completion for this shell.",
        ),
    ] = None,
    _show: Annotated[
        Shell | None,
        typer.Option(
            "--show-completion",
            callback=show_callback,
            expose_value=False,
            is_eager=True,
            help='Print completion for this shell: eval "$(directdl --show-completion bash)"',
        ),
    ] = None,
) -> None:
    ctx.obj = Session(amqp_url, Topology(exchange=exchange), timeout)
