"""Resolving a template, certificate or deploy reference: id, then name, then id prefix."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from directdl.cli import resolve
from directdl.cli.resolve import Unresolved
from directdl.contracts.base import Command
from directdl.contracts.certificate import ListCertificates
from directdl.contracts.deploy import ListDeploys
from directdl.contracts.errors import ErrorCode
from directdl.contracts.template import ListTemplates

pytestmark = pytest.mark.unit

CENTOS = "6f1c0000-0000-4000-8000-000000000001"
CENTOS_2 = "6f1c9999-0000-4000-8000-000000000002"  # shares 6f1c with CENTOS
DEBIAN = "a0b10000-0000-4000-8000-000000000003"
NAMED_HEX = "cafe0000-0000-4000-8000-000000000004"  # named "6f1c", like a prefix of two others


def template(tid: str, name: str, *zones: str) -> dict[str, Any]:
    return {"id": tid, "name": name, "zone_ids": list(zones)}


TEMPLATES = [
    template(CENTOS, "centos", "zone-1"),
    template(CENTOS_2, "centos", "zone-2"),
    template(DEBIAN, "debian", "zone-1", "zone-2"),
]


class FakeSession:
    """Answers the list commands from a catalogue as the services filter it, and records them."""

    def __init__(
        self,
        templates: list[dict[str, Any]] | None = None,
        certificates: list[dict[str, Any]] | None = None,
        deploys: list[dict[str, Any]] | None = None,
    ) -> None:
        self.templates = TEMPLATES if templates is None else templates
        self.certificates = certificates or []
        self.deploys = deploys or []
        self.sent: list[Command] = []

    def call(self, command: Command, as_json: bool) -> dict[str, Any]:
        assert not as_json, "a look-up must print nothing of its own"
        self.sent.append(command)
        if isinstance(command, ListTemplates):
            found = [
                t
                for t in self.templates
                if command.zone_id in (None, *t["zone_ids"])
                and command.name in (None, t["name"])
                and t["id"].startswith(command.id_prefix or "")
            ]
            return {"items": found[: command.page_size], "total": len(found)}
        if isinstance(command, ListCertificates):
            certs = [
                c
                for c in self.certificates
                if command.zone_id in (None, c["zone_id"])
                and command.name in (None, c["alias"])
                and c["id"].startswith(command.id_prefix or "")
            ]
            return {"items": [{"certificate": c} for c in certs]}
        assert isinstance(command, ListDeploys)
        deploys = [d for d in self.deploys if d["deploy_id"].startswith(command.id_prefix or "")]
        return {"items": deploys[: command.page_size], "total": len(deploys)}


def resolved(ref: str, zone: str | None = None, session: FakeSession | None = None) -> str:
    return resolve.resolve(resolve.TEMPLATE, session or FakeSession(), ref, zone)


def unresolved(ref: str, zone: str | None = None, session: FakeSession | None = None) -> Unresolved:
    with pytest.raises(Unresolved) as failure:
        resolved(ref, zone, session)
    return failure.value


def test_a_whole_id_is_taken_as_it_is_without_a_look_up() -> None:
    # The service it goes to says NOT_FOUND when it names nothing.
    session = FakeSession([])
    assert resolved(CENTOS, session=session) == CENTOS
    assert resolved(DEBIAN.upper(), session=session) == DEBIAN
    assert session.sent == []


def test_a_name_unique_in_the_catalogue_names_its_template() -> None:
    assert resolved("debian") == DEBIAN


def test_a_name_several_zones_use_is_ambiguous_until_zone_narrows_it() -> None:
    failure = unresolved("centos")
    assert failure.code is ErrorCode.CONFLICT
    assert "give --zone" in failure.message
    assert CENTOS in failure.message and CENTOS_2 in failure.message
    assert failure.details["candidates"] == [CENTOS, CENTOS_2]
    assert resolved("centos", zone="zone-2") == CENTOS_2


def test_a_unique_prefix_names_its_template() -> None:
    assert resolved("a0b1") == DEBIAN
    assert resolved("6f1c9") == CENTOS_2


def test_a_prefix_two_ids_share_is_ambiguous_and_lists_both() -> None:
    failure = unresolved("6f1c")
    assert failure.code is ErrorCode.CONFLICT
    assert failure.message.startswith("template id prefix '6f1c' is ambiguous: 2 match")
    assert f"{CENTOS}  centos  (zone-1)" in failure.message
    assert "give more of the id" in failure.message


def test_zone_narrows_a_prefix_too() -> None:
    assert resolved("6f1c", zone="zone-1") == CENTOS


def test_a_name_wins_over_a_prefix() -> None:
    session = FakeSession([*TEMPLATES, template(NAMED_HEX, "6f1c", "zone-1")])
    assert resolved("6f1c", session=session) == NAMED_HEX


def test_an_id_wins_over_a_name() -> None:
    session = FakeSession([*TEMPLATES, template(NAMED_HEX, DEBIAN, "zone-1")])
    assert resolved(DEBIAN, session=session) == DEBIAN


def test_fewer_than_four_hex_digits_are_no_prefix() -> None:
    session = FakeSession()
    failure = unresolved("a0b", session=session)
    assert failure.code is ErrorCode.NOT_FOUND
    assert "at least 4 hex digits" in failure.message
    assert [type(c) for c in session.sent] == [ListTemplates]  # the name look-up only
    assert session.sent[0].model_dump(include={"name", "id_prefix"}) == {
        "name": "a0b",
        "id_prefix": None,
    }


def test_nothing_matching_is_not_found_naming_the_reference_and_zone() -> None:
    failure = unresolved("fedora", zone="zone-1")
    assert failure.code is ErrorCode.NOT_FOUND
    assert failure.message == "no template has the name, id or id prefix 'fedora' in zone 'zone-1'"
    assert failure.details == {"field": "template", "value": "fedora"}


def test_a_reference_longer_than_any_id_is_not_found_without_a_look_up() -> None:
    session = FakeSession()
    assert unresolved("x" * 300, session=session).code is ErrorCode.NOT_FOUND
    assert session.sent == []


def test_many_candidates_are_cut_to_five_and_counted() -> None:
    many = [template(f"beef{n:04d}-0000-4000-8000-000000000000", f"t{n}", "z") for n in range(8)]
    failure = unresolved("beef", session=FakeSession(many))
    lines = failure.message.splitlines()
    assert lines[0].startswith("template id prefix 'beef' is ambiguous: 8 match")
    assert len(lines) == 1 + resolve.SHOWN + 1
    assert lines[-1] == "  and 3 more"


def test_a_certificate_is_named_by_alias_in_its_zone_or_by_prefix() -> None:
    certs = [
        {"id": CENTOS, "alias": "repo-ca", "zone_id": "zone-1"},
        {"id": DEBIAN, "alias": "repo-ca", "zone_id": "zone-2"},
    ]
    session = FakeSession(certificates=certs)
    assert resolve.resolve(resolve.CERTIFICATE, session, "repo-ca", "zone-2") == DEBIAN
    assert resolve.resolve(resolve.CERTIFICATE, session, "6f1c") == CENTOS
    with pytest.raises(Unresolved) as failure:
        resolve.resolve(resolve.CERTIFICATE, session, "repo-ca")
    assert "certificate name 'repo-ca' is ambiguous" in failure.value.message


def test_a_deploy_is_named_by_id_or_prefix_only() -> None:
    deploys = [
        {
            "deploy_id": d,
            "state": "FAILED",
            "template_id": DEBIAN,
            "zone_id": "zone-1",
            "created_at": "2026-01-01T00:00:00Z",
        }
        for d in (CENTOS, CENTOS_2)
    ]
    session = FakeSession(deploys=deploys)
    assert resolve.resolve(resolve.DEPLOY, session, "6f1c0") == CENTOS
    with pytest.raises(Unresolved) as failure:
        resolve.resolve(resolve.DEPLOY, session, "6f1c")
    assert f"{CENTOS_2}  FAILED  template {DEBIAN}" in failure.value.message
    with pytest.raises(Unresolved) as missing:
        resolve.resolve(resolve.DEPLOY, session, "centos")
    assert missing.value.message == "no deploy has the id or id prefix 'centos'"
    assert all(isinstance(c, ListDeploys) for c in session.sent)


def test_an_unresolved_reference_is_printed_as_an_error_reply_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exited:
        resolve.template(FakeSession(), "6f1c")
    assert exited.value.exit_code == 1
    printed = " ".join(capsys.readouterr().err.split())
    assert "error CONFLICT: template id prefix '6f1c' is ambiguous" in printed
