"""Certificate messages: upload, revoke, list, provision and delete; and what hosts report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from directdl.contracts.base import Command, Event, Result

CERTIFICATE = "certificate"
AGENT = "host-agent"

Pem = Annotated[str, Field(min_length=1, max_length=1 << 17)]


class HostCertState(StrEnum):
    """What a host did with a certificate, as the host itself answered."""

    UPLOADED = "UPLOADED"
    REVOKED = "REVOKED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class CertificateView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    alias: str
    zone_id: str
    hypervisor: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    revoked: bool
    created_at: datetime


class HostOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host_id: str
    state: HostCertState
    reason: str | None = None
    updated_at: datetime | None = None


class CertificateOutcome(Result):
    """The certificate and each host's outcome, recorded from the host's real answer."""

    certificate: CertificateView
    hosts: list[HostOutcome]


class UploadCertificate(Command):
    """Upload a certificate to the Up hosts of a zone, or to one host; CloudStack's
    uploadTemplateDirectDownloadCertificate."""

    routing_key: ClassVar[str] = "cert.upload"
    consumers = (CERTIFICATE,)
    emits = ("cert.uploaded",)
    result = CertificateOutcome

    name: str = Field(description="The alias on the hosts' trust stores.")
    zone_id: str = Field(min_length=1)
    hypervisor: str = Field(min_length=1)
    certificate: Pem
    host_id: str | None = None


class RevokeCertificate(Command):
    """Remove a certificate from the hosts of a zone, or from one host. Name it by `id`, or by
    `name` and `hypervisor`."""

    routing_key: ClassVar[str] = "cert.revoke"
    consumers = (CERTIFICATE,)
    emits = ("cert.revoked",)
    result = CertificateOutcome

    id: str | None = None
    name: str | None = None
    hypervisor: str | None = None
    zone_id: str = Field(min_length=1)
    host_id: str | None = None

    @model_validator(mode="after")
    def _named(self) -> RevokeCertificate:
        if self.id is None and (self.name is None or self.hypervisor is None):
            raise ValueError("give id, or name and hypervisor")
        return self


class CertificateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: CertificateView
    hosts: list[HostOutcome] | None = None


class CertificateList(Result):
    items: list[CertificateEntry]


class ListCertificates(Command):
    """Certificates with their details; with `list_hosts`, each host's recorded state."""

    routing_key: ClassVar[str] = "cert.list"
    consumers = (CERTIFICATE,)
    result = CertificateList

    id: str | None = None
    zone_id: str | None = None
    list_hosts: bool = False


class ProvisionCertificate(Command):
    """Push one stored certificate to one host."""

    routing_key: ClassVar[str] = "cert.provision"
    consumers = (CERTIFICATE,)
    result = CertificateOutcome

    id: str = Field(min_length=1)
    host_id: str = Field(min_length=1)


class DeleteCertificate(Command):
    """Revoke a certificate everywhere, then forget it (CloudStack leaves dead rows)."""

    routing_key: ClassVar[str] = "cert.delete"
    consumers = (CERTIFICATE,)
    emits = ("cert.deleted",)
    result = CertificateOutcome

    id: str = Field(min_length=1)


class CertificateUploaded(Event):
    routing_key: ClassVar[str] = "cert.uploaded"
    producers = (CERTIFICATE,)

    certificate: CertificateView
    hosts: list[HostOutcome]
    host_id: str | None = Field(None, description="The one host it was for, when named.")


class CertificateRevoked(Event):
    routing_key: ClassVar[str] = "cert.revoked"
    producers = (CERTIFICATE,)

    certificate: CertificateView
    hosts: list[HostOutcome]
    host_id: str | None = Field(None, description="The one host it was for, when named.")


class CertificateDeleted(Event):
    routing_key: ClassVar[str] = "cert.deleted"
    producers = (CERTIFICATE,)

    certificate: CertificateView


class CertificateExpiring(Event):
    """Published some days before `not_after`: an expired certificate breaks every HTTPS deploy."""

    routing_key: ClassVar[str] = "cert.expiring"
    producers = (CERTIFICATE,)

    certificate: CertificateView
    days_left: int


class InstallCertificate(Command):
    """Put a certificate into this host's trust store under `alias`."""

    routing_key: ClassVar[str] = "host.{host_id}.cert.install"
    producers = (CERTIFICATE,)
    consumers = (AGENT,)
    emits = ("cert.host.installed", "cert.host.failed")

    operation_id: str
    certificate_id: str
    alias: str
    certificate: Pem


class RemoveCertificate(Command):
    """Take `alias` out of this host's trust store."""

    routing_key: ClassVar[str] = "host.{host_id}.cert.remove"
    producers = (CERTIFICATE,)
    consumers = (AGENT,)
    emits = ("cert.host.removed", "cert.host.failed")

    operation_id: str
    certificate_id: str
    alias: str


class HostCertReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operation_id: str
    certificate_id: str
    host_id: str
    alias: str


class CertificateInstalled(Event, HostCertReport):
    """The host's trust store now holds the certificate, read back to be sure."""

    routing_key: ClassVar[str] = "cert.host.installed"
    producers = (AGENT,)
    consumers = (CERTIFICATE,)

    fingerprint_sha256: str
    outcome: str = Field(description="installed, replaced or unchanged")


class CertificateRemoved(Event, HostCertReport):
    routing_key: ClassVar[str] = "cert.host.removed"
    producers = (AGENT,)
    consumers = (CERTIFICATE,)

    outcome: str = Field(description="removed or absent")


class CertificateFailed(Event, HostCertReport):
    routing_key: ClassVar[str] = "cert.host.failed"
    producers = (AGENT,)
    consumers = (CERTIFICATE,)

    reason: str
