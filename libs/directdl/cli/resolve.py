"""Naming a template, certificate or deploy by name, id or unique id prefix, as git does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import typer

from directdl.cli.output import Exit, print_error
from directdl.contracts.base import Command
from directdl.contracts.bounds import ID_MAX
from directdl.contracts.certificate import ListCertificates
from directdl.contracts.deploy import ListDeploys
from directdl.contracts.errors import ErrorCode
from directdl.contracts.template import ListTemplates

# Candidates named in an ambiguity error; the rest are counted.
SHOWN = 5
# As git: a shorter prefix would be ambiguous too often to be worth a look-up.
PREFIX_MIN_HEX = 4
_ID_CHARS = re.compile(r"[0-9a-f-]+")
_WHOLE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Caller(Protocol):
    """What resolution needs of a Session: one command, its result, failures printed."""

    def call(self, command: Command, as_json: bool) -> dict[str, Any]: ...


Matches = tuple[list[dict[str, Any]], int]  # the first few found, and how many in all


@dataclass(frozen=True)
class Kind:
    """How to look up one kind of thing by id prefix and by name, and how to show one."""

    noun: str
    id_field: str
    by_prefix: Callable[[Caller, str, str | None], Matches]
    by_name: Callable[[Caller, str, str | None], Matches] | None
    describe: Callable[[dict[str, Any]], str]


class Unresolved(Exception):
    """A reference that names nothing (NOT_FOUND) or several things (CONFLICT)."""

    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def resolve(kind: Kind, session: Caller, ref: str, zone: str | None = None) -> str:
    """The id `ref` names: an exact id wins, then an exact name (in `zone` when given), then
    a unique id prefix of at least four hex digits. Raises Unresolved otherwise."""
    if len(ref) > ID_MAX:  # longer than any id or name the contract allows
        raise _not_found(kind, ref, zone, short=False)
    lowered = ref.lower()
    if _WHOLE_ID.fullmatch(lowered):
        # Ids are UUIDs: a whole one wins as it is, and its service says if it names nothing.
        return lowered
    could_be_id = _ID_CHARS.fullmatch(lowered) is not None
    long_enough = sum(c != "-" for c in lowered) >= PREFIX_MIN_HEX
    prefixed: Matches = ([], 0)
    if could_be_id and long_enough:
        prefixed = kind.by_prefix(session, lowered, zone)
        # An id of another shape, should one ever be made, still wins when whole.
        exact = [item for item in prefixed[0] if item[kind.id_field] == lowered]
        if exact:
            return str(exact[0][kind.id_field])
    if kind.by_name is not None:
        named = kind.by_name(session, ref, zone)
        if named[1] == 1:
            return str(named[0][0][kind.id_field])
        if named[1] > 1:
            raise _ambiguous(kind, ref, "name", named, zone)
    if prefixed[1] == 1:
        return str(prefixed[0][0][kind.id_field])
    if prefixed[1] > 1:
        raise _ambiguous(kind, ref, "id prefix", prefixed, zone)
    raise _not_found(kind, ref, zone, could_be_id and not long_enough)


def resolved(kind: Kind, session: Caller, ref: str, zone: str | None = None) -> str:
    """As `resolve`, but a reference that names nothing or several things is printed as an
    error reply is, and exits 1."""
    try:
        return resolve(kind, session, ref, zone)
    except Unresolved as failure:
        print_error(failure.code, failure.message, failure.details)
        raise typer.Exit(Exit.ERROR_REPLY) from None


def template(session: Caller, ref: str, zone: str | None = None) -> str:
    return resolved(TEMPLATE, session, ref, zone)


def certificate(session: Caller, ref: str, zone: str | None = None) -> str:
    return resolved(CERTIFICATE, session, ref, zone)


def deploy(session: Caller, ref: str) -> str:
    return resolved(DEPLOY, session, ref)


def _ambiguous(kind: Kind, ref: str, how: str, matches: Matches, zone: str | None) -> Unresolved:
    items, total = matches
    lines = [f"  {kind.describe(item)}" for item in items[:SHOWN]]
    if total > SHOWN:
        lines.append(f"  and {total - SHOWN} more")
    hint = "give more of the id"
    if how == "name" and zone is None:
        hint = "give --zone, or the id"
    elif how == "name":
        hint = "give the id"
    message = f"{kind.noun} {how} {ref!r} is ambiguous: {total} match ({hint})"
    ids = [item[kind.id_field] for item in items[:SHOWN]]
    details = {"field": kind.noun, "value": ref, "candidates": ids, "total": total}
    return Unresolved(ErrorCode.CONFLICT, "\n".join([message, *lines]), details)


def _not_found(kind: Kind, ref: str, zone: str | None, short: bool) -> Unresolved:
    named = "id or id prefix" if kind.by_name is None else "name, id or id prefix"
    where = f" in zone {zone!r}" if zone is not None else ""
    message = f"no {kind.noun} has the {named} {ref!r}{where}"
    if short:
        message += f" (an id prefix needs at least {PREFIX_MIN_HEX} hex digits)"
    return Unresolved(ErrorCode.NOT_FOUND, message, {"field": kind.noun, "value": ref})


def _page(session: Caller, command: Command) -> Matches:
    result = session.call(command, as_json=False)
    return list(result["items"]), int(result["total"])


def _certificates(session: Caller, command: ListCertificates) -> Matches:
    items = [entry["certificate"] for entry in session.call(command, as_json=False)["items"]]
    return items, len(items)


TEMPLATE = Kind(
    noun="template",
    id_field="id",
    by_prefix=lambda s, prefix, zone: _page(
        s, ListTemplates(id_prefix=prefix, zone_id=zone, page_size=SHOWN + 1)
    ),
    by_name=lambda s, name, zone: _page(
        s, ListTemplates(name=name, zone_id=zone, page_size=SHOWN + 1)
    ),
    describe=lambda t: f"{t['id']}  {t['name']}  ({', '.join(t['zone_ids'])})",
)
CERTIFICATE = Kind(
    noun="certificate",
    id_field="id",
    by_prefix=lambda s, prefix, zone: _certificates(
        s, ListCertificates(id_prefix=prefix, zone_id=zone)
    ),
    by_name=lambda s, name, zone: _certificates(s, ListCertificates(name=name, zone_id=zone)),
    describe=lambda c: f"{c['id']}  {c['alias']}  ({c['zone_id']})",
)
DEPLOY = Kind(
    noun="deploy",
    id_field="deploy_id",
    by_prefix=lambda s, prefix, _zone: _page(s, ListDeploys(id_prefix=prefix, page_size=SHOWN + 1)),
    by_name=None,
    describe=lambda d: (
        f"{d['deploy_id']}  {d['state']}  template {d['template_id']}  "
        f"({d['zone_id']}, {d['created_at']})"
    ),
)
