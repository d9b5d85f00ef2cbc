"""Certificate operations: a command fanned out to hosts, ended by their answers or the clock."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from certificate.domain.model import Certificate, Host
from directdl.contracts import certificate as msg
from directdl.contracts.base import Message
from directdl.contracts.certificate import HostCertState, HostOutcome
from directdl.contracts.errors import Conflict, ErrorCode
from directdl.contracts.reply import Reply

Announcement = msg.CertificateUploaded | msg.CertificateRevoked | msg.CertificateDeleted
Send = tuple[Message, str]
"""A message to publish, with its routing key."""


class OperationKind(StrEnum):
    """The command an operation carries out; its `rules` say what it asks and announces."""

    UPLOAD = "upload"
    REVOKE = "revoke"
    PROVISION = "provision"
    DELETE = "delete"

    @property
    def rules(self) -> Rules:
        return RULES[self]


@dataclass(frozen=True)
class Rules:
    """What one kind of operation asks each host, and the event that says it has ended."""

    installs: bool
    announces: type[Announcement] | None
    # Deleting forgets the certificate once the hosts have answered.
    forgets: bool = False

    @property
    def asks(self) -> type[msg.InstallCertificate] | type[msg.RemoveCertificate]:
        return msg.InstallCertificate if self.installs else msg.RemoveCertificate

    @property
    def emits(self) -> tuple[type[Message], ...]:
        """What the command may publish: its question to each host, and its event, which goes
        out at once when no host needs asking."""
        return (self.asks,) if self.announces is None else (self.asks, self.announces)


RULES = {
    OperationKind.UPLOAD: Rules(installs=True, announces=msg.CertificateUploaded),
    OperationKind.REVOKE: Rules(installs=False, announces=msg.CertificateRevoked),
    # Puts a stored certificate back on one host, the sync's repair: news to no one.
    OperationKind.PROVISION: Rules(installs=True, announces=None),
    OperationKind.DELETE: Rules(installs=False, announces=msg.CertificateDeleted, forgets=True),
}
ANNOUNCEMENTS: tuple[type[Message], ...] = tuple(
    dict.fromkeys(r.announces for r in RULES.values() if r.announces is not None)
)
"""What ending an operation may publish: a host's answer or the clock can end any kind."""


@dataclass(frozen=True)
class Request:
    """The command behind an operation: the one host it named, if any, where it wants its
    answer, and until when the hosts have to answer."""

    deadline: datetime
    host_id: str | None = None
    reply_to: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Operation:
    """One command fanned out to hosts; ended when every host has answered, or time is up."""

    id: str
    kind: OperationKind
    certificate_id: str
    request: Request
    waiting_for: tuple[str, ...]
    outcomes: tuple[HostOutcome, ...]
    finished: bool = False

    def settled(self, host_id: str, state: HostCertState, reason: str | None) -> Operation:
        outcome = HostOutcome(host_id=host_id, state=state, reason=reason)
        return replace(
            self,
            waiting_for=tuple(h for h in self.waiting_for if h != host_id),
            outcomes=(*self.outcomes, outcome),
        )


@dataclass(frozen=True)
class HostAnswer:
    """What a host answered about an operation: the broker vouched for `host_id`."""

    operation_id: str
    certificate_id: str
    host_id: str
    state: HostCertState
    reason: str | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class Answer:
    """The reply to the command that started an operation, sent when it ends."""

    reply_to: str
    correlation_id: str | None
    reply: Reply


@dataclass(frozen=True)
class Progress:
    """What one step of an operation decided: what to store, what to publish, and, when the
    operation has ended, its outcome and the deferred reply to the command that started it."""

    operation: Operation | None  # None when the step did not change it
    certificate: Certificate | None  # None when it is gone
    sends: tuple[Send, ...] = ()
    # The hosts' outcomes this step settled, to count.
    settled: tuple[HostOutcome, ...] = ()
    # The outcome of an operation that ended; a command that ends at once replies with it.
    outcome: msg.CertificateOutcome | None = None
    # The deferred reply, when a later step ended the operation.
    answer: Answer | None = None
    forget: bool = False  # delete the certificate


def upload(certificate: Certificate, hosts: Sequence[Host], request: Request) -> Progress:
    """Install on each host given: the Up hosts of the zone, or the one the command named.
    Uploading again is how an operator takes a revocation back."""
    certificate = replace(certificate, revoked=False)
    return start(OperationKind.UPLOAD, certificate, [h.host_id for h in hosts], request)


def revoke(certificate: Certificate, hosts: Sequence[Host], request: Request) -> Progress:
    """Remove from each host given that may hold it; the others are SKIPPED. Revoked from the
    whole zone, it is never pushed again, to its hosts old or new."""
    if request.host_id is None:
        certificate = replace(certificate, revoked=True)
    holding = [h.host_id for h in hosts if certificate.held_by(h)]
    skipped = [h.host_id for h in hosts if h.host_id not in holding]
    return start(OperationKind.REVOKE, certificate, holding, request, skipped)


def provision(certificate: Certificate, host: Host, request: Request) -> Progress:
    """Push a stored certificate to one host, unless it has been revoked."""
    check_pushable(certificate)
    return start(OperationKind.PROVISION, certificate, [host.host_id], request)


def check_pushable(certificate: Certificate) -> None:
    if certificate.revoked:
        raise Conflict(
            f"certificate {certificate.alias!r} ({certificate.id}) is revoked and is not pushed "
            "to hosts",
            details={"field": "id", "value": certificate.id},
        )


def delete(certificate: Certificate, hosts: Sequence[Host], request: Request) -> Progress:
    """Remove from every host given that may hold it, then forget it."""
    certificate = replace(certificate, revoked=True)
    holding = [h.host_id for h in hosts if certificate.held_by(h)]
    return start(OperationKind.DELETE, certificate, holding, request)


def start(
    kind: OperationKind,
    certificate: Certificate,
    asked: Sequence[str],
    request: Request,
    skipped: Sequence[str] = (),
) -> Progress:
    """Ask each host in `asked`. With no host to ask, the operation ends at once, and the
    command replies with its outcome rather than later."""
    operation = Operation(
        id=str(uuid.uuid4()),
        kind=kind,
        certificate_id=certificate.id,
        request=request,
        waiting_for=tuple(asked),
        outcomes=tuple(HostOutcome(host_id=h, state=HostCertState.SKIPPED) for h in skipped),
    )
    if not asked:
        return replace(_end(operation, certificate), answer=None)
    sends = tuple(_question(operation, certificate, h) for h in asked)
    return Progress(operation, certificate, sends)


def ended(operation: Operation, certificate: Certificate | None) -> Progress:
    """Every host asked has answered (the answers are stored as they come, in batches): the
    operation ends, once, with its reply and announcement built from all of them."""
    if operation.waiting_for:
        raise ValueError(f"operation {operation.id} still waits for {len(operation.waiting_for)}")
    return _end(operation, certificate)


def expired(
    operation: Operation, certificate: Certificate | None, now: datetime, timeout: float
) -> Progress:
    """Time is up: each host still awaited is FAILED and the operation ends. Not assumed
    done: CloudStack records success whatever a host said, which is why its sync never
    retries. Nothing is sent in the hosts' name: only a host may say it failed, and the
    ending event lists each host's state and reason."""
    reason = f"no answer within {timeout:g} s"
    late = operation.waiting_for
    for host_id in late:
        operation = operation.settled(host_id, HostCertState.FAILED, reason)
        if certificate is not None:
            certificate = certificate.placed(host_id, HostCertState.FAILED, reason, now)
    ended = _end(operation, certificate)
    settled = operation.outcomes[len(operation.outcomes) - len(late) :]
    return replace(ended, settled=settled)


def _end(operation: Operation, certificate: Certificate | None) -> Progress:
    operation = replace(operation, finished=True)
    if certificate is None:
        # Deleted while this operation waited: nothing is left to describe or announce.
        gone = Reply.failure(
            ErrorCode.NOT_FOUND,
            f"certificate {operation.certificate_id} was deleted before every host answered",
            {"field": "id", "value": operation.certificate_id},
        )
        return Progress(operation, None, answer=_answer(operation, gone))
    hosts = sorted(operation.outcomes, key=lambda o: o.host_id)
    outcome = msg.CertificateOutcome(certificate=certificate.view(), hosts=hosts)
    event = _announcement(operation, outcome)
    return Progress(
        operation,
        certificate,
        sends=() if event is None else ((event, event.routing_key),),
        outcome=outcome,
        answer=_answer(operation, Reply.success(outcome)),
        forget=operation.kind.rules.forgets,
    )


def _announcement(operation: Operation, outcome: msg.CertificateOutcome) -> Announcement | None:
    event = operation.kind.rules.announces
    if event is None:
        return None
    if issubclass(event, msg.CertificateDeleted):  # names what is gone, no more
        return event(certificate=outcome.certificate)
    host_id = operation.request.host_id
    return event(certificate=outcome.certificate, hosts=outcome.hosts, host_id=host_id)


def _answer(operation: Operation, reply: Reply) -> Answer | None:
    request = operation.request
    if request.reply_to is None:
        return None
    return Answer(request.reply_to, request.correlation_id, reply)


def _question(operation: Operation, certificate: Certificate, host_id: str) -> Send:
    if operation.kind.rules.installs:
        install = msg.InstallCertificate(
            operation_id=operation.id,
            certificate_id=certificate.id,
            alias=certificate.alias,
            certificate=certificate.pem,
        )
        return install, msg.InstallCertificate.address(host_id=host_id)
    removal = msg.RemoveCertificate(
        operation_id=operation.id, certificate_id=certificate.id, alias=certificate.alias
    )
    return removal, msg.RemoveCertificate.address(host_id=host_id)
