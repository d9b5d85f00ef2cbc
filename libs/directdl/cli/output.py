"""How the CLI shows replies: rich tables for people, JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


# What is printed is data (names, URLs, fingerprints, messages): "[/b]" must not be read as
# markup, nor ":AB:" as an emoji code, nor numbers recoloured. The CLI's own styling is
# given as styled Text instead.
def _plain_console(
    *, stderr: bool = False, width: int | None = None, soft_wrap: bool = False
) -> Console:
    return Console(
        stderr=stderr, width=width, soft_wrap=soft_wrap, markup=False, emoji=False, highlight=False
    )


# Piped output keeps each row on one line, whatever the width, so `| grep` finds whole ids.
out = _plain_console(width=None if sys.stdout.isatty() else 100_000)
# soft_wrap: an error stays on one line when stderr is a file, so it can be grepped.
err = _plain_console(stderr=True, soft_wrap=True)


class Exit(IntEnum):
    """Exit codes scripts can rely on."""

    OK = 0
    ERROR_REPLY = 1  # the service answered with an error; its code is printed
    USAGE = 2  # bad arguments (click's own code)
    NO_REPLY = 3  # nothing answered in time; the command may still take effect
    UNREACHABLE = 4  # no broker, or nothing consumes the command


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def print_record(record: dict[str, Any], title: str | None = None) -> None:
    table = Table(show_header=False, title=title, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in record.items():
        table.add_row(Text(str(key)), _cell(value))
    out.print(table)


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], caption: str = "") -> None:
    table = Table(*columns, caption=caption or None)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    out.print(table)


def print_error(code: str, message: str, details: dict[str, Any] | None = None) -> None:
    err.print(Text.assemble(("error", "bold red"), " ", (code, "red"), ": ", message))
    for problem in (details or {}).get("errors", []):
        err.print(Text(f"  {problem['field']}: {problem['message']}"))


def _cell(value: Any) -> Text:
    """A Text, not a str: a str cell would be read as markup by any console that allows it."""
    return Text(_plain(value))


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)
