"""The host agent's download command and what it reports back."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import (
    Bytes,
    Digest,
    Headers,
    Id,
    Path,
    Rate,
    Seconds,
    Text,
    Token,
    Url,
)
from directdl.contracts.pool import CachePolicy
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.destinations import DEFAULT_DENIED, canonical_network

REGISTRATION = "registration"

Millis = Annotated[int, Field(ge=1, le=3_600_000)]
# One network in CIDR form ("169.254.0.0/16"; a bare address is one host), made canonical.
Cidr = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(canonical_network)]
Networks = Annotated[list[Cidr], Field(max_length=1024)]


class DownloadFailure(StrEnum):
    """Why a download failed: the code of `template.download.failed` and of a failed attempt."""

    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    CONNECTION = "CONNECTION"  # refused, reset, dropped half-way
    HTTP_SERVER = "HTTP_SERVER"  # 5xx
    HTTP_CLIENT = "HTTP_CLIENT"  # 4xx other than 404/410, or a URL that cannot be requested
    TLS = "TLS"  # certificate not trusted, wrong host name, failed handshake
    UNSAFE_REDIRECT = "UNSAFE_REDIRECT"  # to another scheme, down to http, or too many
    DESTINATION_DENIED = "DESTINATION_DENIED"  # the destination policy refuses it
    NOT_FOUND = "NOT_FOUND"  # the source has no such file (404, 410, NFS ENOENT)
    NO_SPACE = "NO_SPACE"
    NO_SUCH_POOL = "NO_SUCH_POOL"  # the host has no pool of the requested id
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"  # after every configured re-download
    SIZE_MISMATCH = "SIZE_MISMATCH"  # fewer or more bytes than the source announced
    UNSAFE_IMAGE = "UNSAFE_IMAGE"
    BAD_METALINK = "BAD_METALINK"
    NFS = "NFS"  # the NFS server failed or refused this client
    DECOMPRESSION = "DECOMPRESSION"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"
    # Recorded by registration, never sent by a host.
    HOST_DOWN = "HOST_DOWN"  # the host stopped or fell silent during the attempt
    DIGEST_MISMATCH = "DIGEST_MISMATCH"  # a reported copy is not the template

    @property
    def another_host_may_succeed(self) -> bool:
        """Whether the deploy should try this template on another host."""
        return self in ANOTHER_HOST_MAY_SUCCEED


ANOTHER_HOST_MAY_SUCCEED = frozenset(
    {
        # The network between this host and the source: another host has another path.
        DownloadFailure.CONNECT_TIMEOUT,
        DownloadFailure.READ_TIMEOUT,
        DownloadFailure.CONNECTION,
        DownloadFailure.HTTP_SERVER,
        DownloadFailure.SIZE_MISMATCH,
        DownloadFailure.NFS,
        # Trust is per host: each has its own trust store and extra CA file.
        DownloadFailure.TLS,
        # This host itself: its pool, its process, its liveness, or the copy it vouched for.
        DownloadFailure.NO_SPACE,
        DownloadFailure.NO_SUCH_POOL,
        DownloadFailure.CANCELLED,
        DownloadFailure.INTERNAL,
        DownloadFailure.HOST_DOWN,
        DownloadFailure.DIGEST_MISMATCH,
    }
)
EVERY_HOST_WOULD_FAIL = frozenset(
    {
        # The source's own answer, the same to every host's identical request.
        DownloadFailure.HTTP_CLIENT,
        DownloadFailure.NOT_FOUND,
        DownloadFailure.UNSAFE_REDIRECT,
        DownloadFailure.BAD_METALINK,
        # The source's bytes: every host would download the same ones.
        DownloadFailure.CHECKSUM_MISMATCH,
        DownloadFailure.UNSAFE_IMAGE,
        DownloadFailure.DECOMPRESSION,
        # Every host is sent the same destination policy.
        DownloadFailure.DESTINATION_DENIED,
    }
)


class Timeouts(BaseModel):
    """CloudStack's three direct-download settings, in milliseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_ms: Millis = 5000
    socket_ms: Millis = 5000
    connection_request_ms: Millis = 5000


class DownloadAccepted(Result):
    job_id: Id
    state: Token


class DownloadTemplate(Command):
    """Download a template into this host's pool, verify it, and report the outcome."""

    routing_key: ClassVar[str] = "host.{host_id}.template.download"
    sent_by = senders.Services((senders.REGISTRATION,))
    result = DownloadAccepted

    job_id: Id
    deploy_id: Id
    template_id: Id
    url: Url
    protocol: SourceProtocol
    format: TemplateFormat
    checksum: Digest | None = Field(None, description="{ALGO}hex; none means report SHA-256")
    headers: Headers = Field(default_factory=dict)
    pool_id: Id | None = Field(None, description="The agent's pool when not given.")
    expected_size: Bytes | None = None
    timeouts: Timeouts = Timeouts()
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    checksum_attempts: Annotated[int, Field(ge=1, le=5)] = 2
    denied_networks: Networks = Field(
        default_factory=lambda: list(DEFAULT_DENIED),
        description="No connection goes there, through a redirect or a mirror either; "
        "they win over allowed_networks.",
    )
    allowed_networks: Networks = Field(
        default_factory=list, description="When not empty, the only networks to connect to."
    )
    cache: CachePolicy = Field(
        default_factory=CachePolicy, description="The pool's limits, applied once it is stored."
    )


class CancelDownload(Command):
    """The deploy no longer waits for this job: stop it, and keep nothing of it."""

    routing_key: ClassVar[str] = "host.{host_id}.template.download.cancel"
    sent_by = senders.Services((senders.REGISTRATION,))
    result = DownloadAccepted

    job_id: Id
    deploy_id: Id
    reason: Text


class ResumeDownload(Command):
    """The deploy still waits for this job, held since the agent started: go on with it."""

    routing_key: ClassVar[str] = "host.{host_id}.template.download.resume"
    sent_by = senders.Services((senders.REGISTRATION,))
    result = DownloadAccepted

    job_id: Id
    deploy_id: Id


class RecoveredJob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: Id
    deploy_id: Id
    template_id: Id
    bytes_kept: Bytes = Field(description="Of the partial file, kept to resume from.")


class DownloadsRecovered(Event):
    """An agent started with unfinished jobs and holds them until their deploys' owner says,
    for each, to resume or to cancel it."""

    routing_key: ClassVar[str] = "template.download.recovered"
    sent_by = senders.THE_HOST

    host_id: Id
    jobs: Annotated[list[RecoveredJob], Field(max_length=10_000)]


class DownloadReport(BaseModel):
    """What every download event names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: Id
    deploy_id: Id
    template_id: Id
    host_id: Id
    pool_id: Id


class DownloadProgress(Event, DownloadReport):
    """At most once a second while bytes arrive."""

    routing_key: ClassVar[str] = "template.download.progress"
    sent_by = senders.THE_HOST

    bytes_done: Bytes
    total: Bytes | None
    rate_bps: Rate


class DownloadCompleted(Event, DownloadReport):
    """The template is on the pool under its final name, verified."""

    routing_key: ClassVar[str] = "template.download.completed"
    sent_by = senders.THE_HOST

    path: Path
    size: Bytes
    digest: Digest = Field(description="The verified digest, {ALGO}hex")
    image_digest: Digest | None = Field(
        None,
        description="{SHA-256}hex of the file on the pool, when it is not what was verified "
        "(the source was compressed)",
    )
    cached: bool
    duration_s: Seconds


class DownloadFailed(Event, DownloadReport):
    """Nothing was left on the pool; the code says whether another host may succeed."""

    routing_key: ClassVar[str] = "template.download.failed"
    sent_by = senders.THE_HOST

    code: DownloadFailure
    message: Text
