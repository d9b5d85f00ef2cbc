"""`-o/--output`, `--fields` and `--json` on every command, and usage errors as JSON."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from directdl.cli.output import Exit, Format, Shape, error_reply, print_json, shaped

OUTPUT_ENV = "DIRECTDL_OUTPUT"
# The CLI's own code for bad arguments, beside the services' codes (exit 2).
USAGE = "USAGE"


def _options(
    output_format: Annotated[
        Format | None,
        typer.Option(
            "-o",
            "--output",
            envvar=OUTPUT_ENV,
            case_sensitive=False,
            help="table, json, csv, tsv or text (key = value). On a pipe the table has no "
            "borders, a row a line.",
        ),
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(
            metavar="a,b,...", help="Only these columns, in this order (with -o json, keys)."
        ),
    ] = None,
) -> None:
    """Declares the options once; each command gets its own copies of them."""


def output_options() -> list[Any]:
    holder = typer.Typer(add_completion=False)
    holder.command()(_options)
    return list(typer.main.get_command(holder).params)


class FormattedGroup(TyperGroup):
    """The top group: every command below it that takes `--json` also takes `-o` and
    `--fields`; with JSON asked, a usage error is a JSON error reply on stdout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in (self, *_commands(self)):
            _show_flags_as_flags(command.params)
            _show_help_as_flag(command)
            _add_output_options(command)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not json_asked(argv) or kwargs.get("standalone_mode") is False:
            return super().main(argv, *rest, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(argv, *rest, **kwargs)
        except typer.TyperException as error:  # click's own, as typer vendors it
            with shaped(Shape(Format.JSON)):
                print_json(error_reply(USAGE, error.format_message(), _details(error)))
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.exit(Exit.ERROR_REPLY)
        sys.exit(code if isinstance(code, int) else Exit.OK)


def json_asked(argv: Sequence[str]) -> bool:
    """Whether JSON was asked, read from the words themselves: parsing may have failed."""
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--json" or word in ("-ojson", "--output=json"):
            return True
        if word in ("-o", "--output") and argv[i + 1 : i + 2] == ["json"]:
            return True
    return os.environ.get(OUTPUT_ENV, "").lower() == Format.JSON


def _details(error: typer.TyperException) -> dict[str, Any]:
    if isinstance(error, typer.BadParameter):
        hint = error.param_hint or (error.param.opts[0] if error.param else None)
        if hint:
            return {"param": hint if isinstance(hint, str) else ", ".join(hint)}
    return {}


def _commands(group: TyperGroup) -> Iterator[Any]:
    """Every command and group below `group`."""
    for command in group.commands.values():
        yield command
        if isinstance(command, TyperGroup):
            yield from _commands(command)


def _show_flags_as_flags(params: list[Any]) -> None:
    # Flags take no value: typer would show each as `--json <bool>`, as if it took one.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


def _show_help_as_flag(command: Any) -> None:
    # click makes `--help` afresh for each context, outside `params`, so it is caught as made.
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def _add_output_options(command: Any) -> None:
    as_json = next((p for p in command.params if p.name == "as_json"), None)
    if as_json is None or command.callback is None:
        return
    after = command.params.index(as_json) + 1
    command.params[after:after] = output_options()
    command.callback = _shaping(command.callback)


def _shaping(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The command run within its Shape; `-o json` reaches it as `as_json`."""

    @functools.wraps(callback)
    def run(**kwargs: Any) -> Any:
        chosen, fields = kwargs.pop("output_format"), kwargs.pop("fields")
        format_ = Format.JSON if kwargs.get("as_json") else Format(chosen or Format.TABLE)
        kwargs["as_json"] = format_ is Format.JSON
        with shaped(Shape(format_, parse_fields(fields))):
            return callback(**kwargs)

    return run


def parse_fields(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    if not fields:
        raise typer.BadParameter("name at least one field", param_hint="--fields")
    return fields
