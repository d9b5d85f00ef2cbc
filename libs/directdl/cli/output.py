"""How the CLI shows replies: tables for people; JSON, CSV, TSV or key = value text for
scripts (`-o`); errors on stderr, or as JSON on stdout with `-o json`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from directdl.cli.tables import boxed_table, plain_table


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


class Format(StrEnum):
    """What `-o` takes: CloudMonkey's output formats."""

    TABLE = "table"  # bordered and fitted on a terminal; borderless, a row a line, on a pipe
    JSON = "json"  # the reply as the service sent it
    CSV = "csv"
    TSV = "tsv"
    TEXT = "text"  # `key = value` lines, a blank line between records


@dataclass
class Shape:
    """How one command prints: its format and the fields picked. `picked` once the first
    table (the command's main one) has been printed: `--fields` names its columns; `json`
    once a JSON document is on stdout: there is only ever one."""

    format: Format = Format.TABLE
    fields: tuple[str, ...] | None = None
    picked: bool = False
    json: bool = False


_shape: ContextVar[Shape | None] = ContextVar("shape", default=None)


def shape() -> Shape:
    """The running command's shape; a table with every field outside of one."""
    return _shape.get() or Shape()


@contextmanager
def shaped(current: Shape) -> Iterator[Shape]:
    token = _shape.set(current)
    try:
        yield current
    finally:
        _shape.reset(token)


SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


class Exit(IntEnum):
    """Exit codes scripts can rely on."""

    OK = 0
    ERROR_REPLY = 1  # the service answered with an error; its code is printed
    USAGE = 2  # bad arguments (click's own code)
    NO_REPLY = 3  # nothing answered in time; the command may still take effect
    UNREACHABLE = 4  # no broker, or nothing consumes the command


def print_json(value: Any) -> None:
    current = shape()
    current.json = True
    # Sorted, so that diffs of it read well; in the order asked when --fields gives one.
    print(json.dumps(value, indent=2, sort_keys=current.fields is None, default=str))


def print_reply(reply: dict[str, Any]) -> None:
    """A reply envelope as JSON; with `--fields`, its records keep only those keys."""
    fields = shape().fields
    if fields is not None and reply.get("result") is not None:
        reply = {**reply, "result": _project(reply["result"], fields)}
    print_json(reply)


def print_record(record: dict[str, Any], title: str | None = None) -> None:
    columns = _picked(list(record))
    current = shape()
    if current.format is Format.TABLE:
        table = Table(show_header=False, title=title, title_justify="left")
        if not out.is_terminal:
            table.box = None
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key in columns:
            table.add_row(Text(str(key)), _cell(record.get(key)))
        out.print(table)
    else:
        print_rows([record], columns)


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], caption: str = "") -> None:
    columns = _picked(columns)
    cells = [[_plain(row.get(column)) for column in columns] for row in rows]
    current = shape().format
    if current is Format.TABLE:
        _print_table(columns, cells, caption or None)
    elif current is Format.JSON:
        print_json([{c: row.get(c) for c in columns} for row in rows])
    elif current is Format.TEXT:
        records = ("\n".join(f"{c} = {v}" for c, v in zip(columns, r, strict=True)) for r in cells)
        print("\n\n".join(records))
    else:
        _print_separated(columns, cells, current)


def print_error(code: str, message: str, details: dict[str, Any] | None = None) -> None:
    """On stderr for people; with `-o json`, on stdout as `{"ok": false, "error": ...}`,
    as the services answer, unless a JSON document is already there."""
    current = shape()
    if current.format is Format.JSON and not current.json:
        print_json(error_reply(code, message, details))
        return
    err.print(Text.assemble(("error", "bold red"), " ", (code, "red"), ": ", message))
    for problem in (details or {}).get("errors", []):
        err.print(Text(f"  {problem['field']}: {problem['message']}"))


def error_reply(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shape of the services' error replies (contracts/reply.py), for the CLI's own."""
    return {"ok": False, "error": {"code": code, "message": message, "details": details or {}}}


def _print_table(columns: Sequence[str], cells: list[list[str]], caption: str | None) -> None:
    if not out.is_terminal:
        out.print(plain_table(columns, cells, caption))
        return
    table = boxed_table(columns, cells, out.width, caption)
    needed = table.width or 0
    if needed <= out.width:
        out.print(table)
        return
    # Even the ids and names alone are wider than the terminal: it wraps the lines, whole.
    wide = Console(
        file=out.file,
        width=needed,
        markup=False,
        emoji=False,
        highlight=False,
        force_terminal=out.is_terminal,
        color_system=out.color_system,  # type: ignore[arg-type]
    )
    wide.print(table)


def _print_separated(columns: Sequence[str], cells: list[list[str]], current: Format) -> None:
    if current is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return
    # TSV has no quoting: a tab or a line break inside a value would start a new cell or row.
    for line in (columns, *cells):
        print("\t".join(" ".join(value.split("\t")).replace("\n", " ") for value in line))


def _picked(columns: Sequence[str]) -> list[str]:
    """The main table's columns as `--fields` picks and orders them; other tables whole."""
    current = shape()
    if current.fields is None or current.picked:
        return list(columns)
    current.picked = True
    _check_known(current.fields, columns)
    return list(current.fields)


def _check_known(fields: Sequence[str], known: Sequence[str]) -> None:
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise typer.BadParameter(
            f"unknown field {', '.join(map(repr, unknown))}; known: {', '.join(known)}",
            param_hint="--fields",
        )


def _project(result: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """`result` with each record in it (a dict, or a list of dicts) cut to `fields`; a
    result without records is itself the record."""
    records = {
        key: value
        for key, value in result.items()
        if isinstance(value, dict)
        or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value))
    }
    if not records:
        _check_known(fields, list(result))
        return {f: result[f] for f in fields}
    known = list(dict.fromkeys(k for v in records.values() for r in _listed(v) for k in r))
    _check_known(fields, known)
    projected = {
        key: [{f: r.get(f) for f in fields} for r in value]
        if isinstance(value, list)
        else {f: value.get(f) for f in fields}
        for key, value in records.items()
    }
    return {**result, **projected}


def _listed(value: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


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
