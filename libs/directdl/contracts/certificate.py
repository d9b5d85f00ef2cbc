"""Certificate messages: upload, revoke, list, provision and delete; and what hosts report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import MANY, Digest, Dn, Id, Pem, Short, Text, Token

CERTIFICATE = "certificate"

Hosts = Annotated[list["HostOutcome"], Field(max_length=MANY)]


class HostCertState(StrEnum):
    """What a host did with a certificate, as the host itself answered."""

    UPLOADED = "UPLOADED"
    REVOKED = "REVOKED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class CertificateView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    alias: Short
    zone_id: Id
    hypervisor: Token
    subject: Dn
    issuer: Dn
    serial: Short = Field(description="The serial number in upper-case hex, without separators.")
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: Digest
    revoked: bool
    created_at: datetime


class HostOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host_id: Id
    state: HostCertState
    reason: Text | None = None
    updated_at: datetime | None = None


class CertificateOutcome(Result):
    """The certificate and each host's outcome, recorded from the host's real answer."""

    certificate: CertificateView
    hosts: Hosts


class UploadCertificate(Command):
    """Upload a certificate to the Up hosts of a zone, or to one host; CloudStack's
    uploadTemplateDirectDownloadCertificate."""

    routing_key: ClassVar[str] = "cert.upload"
    result = CertificateOutcome

    name: Short = Field(description="The alias on the hosts' trust stores.")
    zone_id: Id
    hypervisor: Token
    certificate: Pem
    host_id: Id | None = None


class RevokeCertificate(Command):
    """Remove a certificate from the hosts of a zone, or from one host. Name it by `id`, or by
    `name` and `hypervisor`."""

    routing_key: ClassVar[str] = "cert.revoke"
    result = CertificateOutcome

    id: Id | None = None
    name: Short | None = None
    hypervisor: Token | None = None
    zone_id: Id
    host_id: Id | None = None

    @model_validator(mode="after")
    def _named(self) -> RevokeCertificate:
        if self.id is None and (self.name is None or self.hypervisor is None):
            raise ValueError(
                "give id, or name and hypervisor (CLI: --id, or --name and --hypervisor)"
            )
        return self


class CertificateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: CertificateView
    hosts: Hosts | None = None


class CertificateList(Result):
    items: Annotated[list[CertificateEntry], Field(max_length=MANY)]


class ListCertificates(Command):
    """Certificates with their details; with `list_hosts`, each host's recorded state."""

    routing_key: ClassVar[str] = "cert.list"
    result = CertificateList

    id: Id | None = None
    zone_id: Id | None = None
    name: Short | None = Field(None, description="Exact alias.")
    id_prefix: Id | None = Field(
        None, description="Certificates whose id starts so: a unique prefix names one, as in git."
    )
    list_hosts: bool = False


class ProvisionCertificate(Command):
    """Push one stored certificate to one host."""

    routing_key: ClassVar[str] = "cert.provision"
    result = CertificateOutcome

    id: Id
    host_id: Id


class DeleteCertificate(Command):
    """Revoke a certificate everywhere, then forget it (CloudStack leaves dead rows)."""

    routing_key: ClassVar[str] = "cert.delete"
    result = CertificateOutcome

    id: Id


class CertificateUploaded(Event):
    routing_key: ClassVar[str] = "cert.uploaded"
    sent_by = senders.Services((senders.CERTIFICATE,))

    certificate: CertificateView
    hosts: Hosts
    host_id: Id | None = Field(None, description="The one host it was for, when named.")


class CertificateRevoked(Event):
    routing_key: ClassVar[str] = "cert.revoked"
    sent_by = senders.Services((senders.CERTIFICATE,))

    certificate: CertificateView
    hosts: Hosts
    host_id: Id | None = Field(None, description="The one host it was for, when named.")


class CertificateDeleted(Event):
    routing_key: ClassVar[str] = "cert.deleted"
    sent_by = senders.Services((senders.CERTIFICATE,))

    certificate: CertificateView


class CertificateExpiring(Event):
    """Published some days before `not_after`: an expired certificate breaks every HTTPS deploy."""

    routing_key: ClassVar[str] = "cert.expiring"
    sent_by = senders.Services((senders.CERTIFICATE,))

    certificate: CertificateView
    days_left: Annotated[int, Field(ge=0, le=100_000)]


class InstallCertificate(Command):
    """Put a certificate into this host's trust store under `alias`."""

    routing_key: ClassVar[str] = "host.{host_id}.cert.install"
    sent_by = senders.Services((senders.CERTIFICATE,))

    operation_id: Id
    certificate_id: Id
    alias: Short
    certificate: Pem


class RemoveCertificate(Command):
    """Take `alias` out of this host's trust store."""

    routing_key: ClassVar[str] = "host.{host_id}.cert.remove"
    sent_by = senders.Services((senders.CERTIFICATE,))

    operation_id: Id
    certificate_id: Id
    alias: Short


class HostCertReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operation_id: Id
    certificate_id: Id
    host_id: Id
    alias: Short
    answered_at: AwareDatetime | None = Field(
        None,
        description="When the host answered: the certificate service judges an operation's "
        "deadline against the answers it has read, so a backlog of answers fails no host",
    )


class CertificateInstalled(Event, HostCertReport):
    """The host's trust store now holds the certificate, read back to be sure."""

    routing_key: ClassVar[str] = "cert.host.installed"
    sent_by = senders.THE_HOST

    fingerprint_sha256: Digest
    outcome: Token = Field(description="installed, replaced or unchanged")


class CertificateRemoved(Event, HostCertReport):
    routing_key: ClassVar[str] = "cert.host.removed"
    sent_by = senders.THE_HOST

    outcome: Token = Field(description="removed or absent")


class CertificateFailed(Event, HostCertReport):
    routing_key: ClassVar[str] = "cert.host.failed"
    sent_by = senders.THE_HOST

    reason: Text
