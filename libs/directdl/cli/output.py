"""How the CLI shows replies: rich tables for people, JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
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


SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


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


def human_size(size: int) -> str:
    """Bytes in binary units, one decimal: 1536 is "1.5 KiB"."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {SIZE_UNITS[unit]}"


def ago(when: str | None, now: datetime | None = None) -> str:
    """An ISO time from a reply as an age, such as "3 min ago"; "-" when there is none."""
    if when is None:
        return "-"
    moment = datetime.fromisoformat(when)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the services keep UTC
    # A host's clock a little ahead of ours would read "in 2 s": "0 s ago" says what matters.
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, length in (("day", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return f"{seconds} s ago"


def short_digest(digest: str | None, keep: int = 12) -> str:
    """`{SHA-256}` and the first `keep` hex digits: enough to tell copies apart by eye."""
    if digest is None:
        return "-"
    algorithm, brace, hexdigits = digest.rpartition("}")
    prefix = algorithm + brace
    return prefix + hexdigits[:keep] + ("..." if len(hexdigits) > keep else "")


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
