"""`directdl settings list|get|set`: the global settings, whichever service owns each."""

from __future__ import annotations

from typing import Annotated

import typer

from directdl.cli.output import print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import settings as msg

app = typer.Typer(help="Global settings such as the download timeouts.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
COLUMNS = ("name", "value", "unit", "default", "owner", "description")


@app.command("list", epilog="Example: directdl settings list --hidden")
def list_(
    ctx: typer.Context,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden settings.")] = False,
    keyword: Annotated[str | None, typer.Option(help="Part of the name.")] = None,
    as_json: Json = False,
) -> None:
    """List the settings and their values."""
    session: Session = ctx.obj
    result = session.call(msg.ListSettings(show_hidden=hidden, keyword=keyword), as_json)
    if not as_json:
        print_rows(result["items"], COLUMNS)


@app.command(epilog="Example: directdl settings get direct.download.socket.timeout")
def get(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Show one setting."""
    session: Session = ctx.obj
    result = session.call(msg.GetSetting(name=name), as_json)
    if not as_json:
        print_record(result["setting"])


# ignore_unknown_options: "-5" is no option this command has, so it is taken as the value.
@app.command(
    "set",
    epilog="Example: directdl settings set direct.download.socket.timeout 10000",
    context_settings={"ignore_unknown_options": True},
)
def set_(ctx: typer.Context, name: str, value: str, as_json: Json = False) -> None:
    """Change a setting; it applies without a restart."""
    session: Session = ctx.obj
    result = session.call(msg.UpdateSetting(name=name, value=value), as_json)
    if not as_json:
        print_record(result["setting"])
