"""`directdl apikey create|list|revoke|secrets-key`: the CloudStack API gateway's keys."""

from __future__ import annotations

from typing import Annotated

import typer
from cryptography.fernet import Fernet

from directdl.cli.output import out, print_record, print_rows
from directdl.cli.session import Session
from directdl.contracts import apikey as msg

app = typer.Typer(
    help="API keys for the CloudStack API (cs, cmk): the gateway keeps them.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]
COLUMNS = ("name", "api_key", "created_at", "last_used_at", "revoked_at")


@app.command(epilog="Example: directdl apikey create --name ops-alice")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
    as_json: Json = False,
) -> None:
    """A new API key and secret key; the secret is shown this once."""
    session: Session = ctx.obj
    result = session.call(msg.CreateApiKey(name=name), as_json)
    if not as_json:
        key = result["key"]
        print_record(
            {"name": key["name"], "api_key": key["api_key"], "secret_key": result["secret_key"]},
            title="API key (the secret is not shown again)",
        )


@app.command("list", epilog="Example: directdl apikey list --all")
def list_keys(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    as_json: Json = False,
) -> None:
    """The API keys, never their secrets."""
    session: Session = ctx.obj
    result = session.call(msg.ListApiKeys(include_revoked=include_revoked), as_json)
    if not as_json:
        print_rows(result["items"], COLUMNS, caption=f"{len(result['items'])} API keys")


@app.command(epilog="Example: directdl apikey revoke 9xT…")
def revoke(ctx: typer.Context, api_key: str, as_json: Json = False) -> None:
    """Refuse every request signed with this key from now on."""
    session: Session = ctx.obj
    result = session.call(msg.RevokeApiKey(api_key=api_key), as_json)
    if not as_json:
        print_record(result["key"], title="revoked")


@app.command("secrets-key", epilog="Example: API_SECRETS_KEY=$(directdl apikey secrets-key)")
def secrets_key() -> None:
    """Print a new key for API_SECRETS_KEY; to rotate, put it first: API_SECRETS_KEY=new,old."""
    out.print(Fernet.generate_key().decode(), highlight=False)
