"""The operation state machine on its own: what each step stores, publishes and answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certificate.domain import operation
from certificate.domain.model import Certificate, Host
from certificate.domain.operation import (
    ANNOUNCEMENTS,
    Operation,
    OperationKind,
    Progress,
    Request,
)
from directdl.contracts import certificate as msg
from directdl.contracts.certificate import HostCertState
from directdl.contracts.errors import Conflict
from directdl.contracts.host import HostState

pytestmark = pytest.mark.unit

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
ASKED = Request(deadline=NOW + timedelta(seconds=30), reply_to="caller", correlation_id="c-1")
UPLOADED, REVOKED, FAILED, SKIPPED = (
    HostCertState.UPLOADED,
    HostCertState.REVOKED,
    HostCertState.FAILED,
    HostCertState.SKIPPED,
)


def certificate(**changes: Any) -> Certificate:
    cert = Certificate(
        id="cert-1",
        alias="repo",
        zone_id="zone-1",
        pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        subject="CN=repo.example",
        issuer="CN=repo.example",
        serial="1A",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=90),
        fingerprint_sha256=":".join(["AB"] * 32),
        created_at=NOW,
    )
    return replace(cert, **changes)


def host(host_id: str, *aliases: str) -> Host:
    return Host(host_id, "zone-1", HostState.UP, NOW, 5.0, frozenset(aliases))


def kinds(progress: Progress) -> list[tuple[str, str]]:
    return [(type(m).__name__, key) for m, key in progress.sends]


def answer_all(progress: Progress, state: HostCertState = UPLOADED) -> Progress:
    """Every asked host answers `state` (as the repository records them); the last step."""
    assert progress.operation is not None
    current: Operation = progress.operation
    for host_id in progress.operation.waiting_for:
        current = current.settled(host_id, state, None)
    return operation.ended(current, progress.certificate)


def test_an_upload_asks_each_host_and_waits() -> None:
    started = operation.upload(certificate(revoked=True), [host("h1"), host("h2")], ASKED)

    assert kinds(started) == [
        ("InstallCertificate", "host.h1.cert.install"),
        ("InstallCertificate", "host.h2.cert.install"),
    ]
    assert started.operation is not None and started.operation.waiting_for == ("h1", "h2")
    assert started.certificate is not None and not started.certificate.revoked
    assert started.outcome is None and started.answer is None


def test_the_last_answer_ends_it_with_the_event_and_the_deferred_reply() -> None:
    started = operation.upload(certificate(), [host("h2"), host("h1")], ASKED)
    assert started.operation is not None
    first = started.operation.settled("h2", FAILED, "no")
    assert first.waiting_for == ("h1",)
    with pytest.raises(ValueError, match="still waits for 1"):
        operation.ended(first, started.certificate)

    last = operation.ended(first.settled("h1", UPLOADED, None), started.certificate)

    assert last.operation is not None and last.operation.finished
    [(event, key)] = last.sends
    assert isinstance(event, msg.CertificateUploaded) and key == "cert.uploaded"
    assert [(h.host_id, h.state, h.reason) for h in event.hosts] == [
        ("h1", UPLOADED, None),
        ("h2", FAILED, "no"),
    ]
    assert last.answer is not None and last.outcome is not None
    assert (last.answer.reply_to, last.answer.correlation_id) == ("caller", "c-1")
    assert last.answer.reply.result == last.outcome.model_dump(mode="json")
    assert last.settled == (), "each host was counted as its answer was recorded"


def test_with_no_host_to_ask_it_ends_at_once_and_the_command_replies_itself() -> None:
    started = operation.upload(certificate(), [], ASKED)

    assert started.operation is not None and started.operation.finished
    assert kinds(started) == [("CertificateUploaded", "cert.uploaded")]
    assert started.outcome is not None and started.outcome.hosts == []
    assert started.answer is None, "the command's own reply carries the outcome"


def test_time_up_fails_each_silent_host_then_ends() -> None:
    started = operation.upload(certificate(), [host("h1"), host("h2")], ASKED)
    assert started.operation is not None
    first = started.operation.settled("h1", UPLOADED, None)

    late = operation.expired(first, started.certificate, NOW, 30)

    # Nothing in h2's name: only a host may say it failed; the ending event says it all.
    assert kinds(late) == [("CertificateUploaded", "cert.uploaded")]
    ended = late.sends[0][0]
    assert isinstance(ended, msg.CertificateUploaded)
    assert [(h.host_id, h.state, h.reason) for h in ended.hosts] == [
        ("h1", UPLOADED, None),
        ("h2", FAILED, "no answer within 30 s"),
    ]
    assert [(o.host_id, o.state) for o in late.settled] == [("h2", FAILED)]
    assert late.certificate is not None and late.certificate.state_on("h2") is FAILED
    assert late.answer is not None and late.answer.reply.ok


def test_an_operation_whose_certificate_was_deleted_meanwhile_ends_not_found() -> None:
    started = operation.upload(certificate(), [host("h1")], ASKED)
    assert started.operation is not None

    late = operation.expired(started.operation, None, NOW, 30)
    answered = operation.ended(started.operation.settled("h1", UPLOADED, None), None)

    for ended in (late, answered):
        assert ended.operation is not None and ended.operation.finished
        assert ended.sends == () and ended.certificate is None
        assert ended.answer is not None and ended.answer.reply.error is not None
        assert ended.answer.reply.error.code == "NOT_FOUND"
        assert "cert-1" in ended.answer.reply.error.message


def test_a_zone_revoke_asks_the_holders_skips_the_rest_and_revokes() -> None:
    cert = certificate().placed("h1", UPLOADED, None, NOW).placed("h2", FAILED, "x", NOW)
    hosts = [host("h1"), host("h2"), host("h3", "repo"), host("h4"), host("h5", "other")]
    started = operation.revoke(cert.placed("h4", REVOKED, None, NOW), hosts, ASKED)

    assert [key for _, key in started.sends] == [
        "host.h1.cert.remove",
        "host.h2.cert.remove",
        "host.h3.cert.remove",
    ]
    assert started.operation is not None
    assert [(o.host_id, o.state) for o in started.operation.outcomes] == [
        ("h4", SKIPPED),
        ("h5", SKIPPED),
    ]
    assert started.certificate is not None and started.certificate.revoked

    ended = answer_all(started, REVOKED)
    [(event, _)] = ended.sends
    assert isinstance(event, msg.CertificateRevoked) and event.host_id is None
    assert [h.state for h in event.hosts] == [REVOKED, REVOKED, REVOKED, SKIPPED, SKIPPED]


def test_a_revoke_from_one_host_leaves_the_certificate_pushable() -> None:
    one = replace(ASKED, host_id="h1")
    started = operation.revoke(certificate(), [host("h1")], one)

    assert started.certificate is not None and not started.certificate.revoked
    [(event, _)] = started.sends
    assert isinstance(event, msg.CertificateRevoked) and event.host_id == "h1"
    assert [(h.host_id, h.state) for h in event.hosts] == [("h1", SKIPPED)]


def test_delete_removes_then_forgets_with_an_event_naming_only_the_certificate() -> None:
    cert = certificate().placed("h1", UPLOADED, None, NOW)
    started = operation.delete(cert, [host("h1"), host("h2")], ASKED)
    assert [key for _, key in started.sends] == ["host.h1.cert.remove"]
    assert not started.forget

    ended = answer_all(started, REVOKED)

    assert ended.forget
    [(event, _)] = ended.sends
    assert isinstance(event, msg.CertificateDeleted) and event.certificate.revoked


def test_provision_refuses_a_revoked_certificate_and_announces_nothing() -> None:
    with pytest.raises(Conflict, match="revoked"):
        operation.provision(certificate(revoked=True), host("h1"), ASKED)

    ended = answer_all(operation.provision(certificate(), host("h1"), ASKED))

    assert ended.sends == () and ended.outcome is not None and ended.answer is not None


@pytest.mark.parametrize("kind", list(OperationKind))
def test_each_kind_publishes_only_what_its_table_entries_list(kind: OperationKind) -> None:
    cert = certificate().placed("h1", UPLOADED, None, NOW)
    started = operation.start(kind, cert, ["h1"], ASKED)
    at_once = operation.start(kind, cert, [], ASKED)
    assert started.operation is not None
    ended = operation.ended(started.operation.settled("h1", UPLOADED, None), cert)
    late = operation.expired(started.operation, cert, NOW, 30)

    for step in (started, at_once):
        assert {type(m) for m, _ in step.sends} <= set(kind.rules.emits)
    assert {type(m) for m, _ in ended.sends} <= set(ANNOUNCEMENTS)
    assert {type(m) for m, _ in late.sends} <= set(ANNOUNCEMENTS)
    announced = kind.rules.announces
    assert [type(m) for m, _ in ended.sends] == ([announced] if announced else [])
