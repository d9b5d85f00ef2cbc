"""What the service keeps: certificates, where each is placed, and the hosts it has heard from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from certificate.domain.certificate import ParsedCertificate
from directdl.contracts.certificate import CertificateView, HostCertState, HostOutcome
from directdl.contracts.host import HostState
from directdl.liveness import is_up

# A host holds a certificate by our record when it took it, or when it failed to: a failed
# install may have got as far as the store, so a removal asks it too.
HELD = frozenset({HostCertState.UPLOADED, HostCertState.FAILED})
# Warn again each day until the certificate is replaced, revoked or gone.
EXPIRY_REPEAT = timedelta(days=1)


@dataclass(frozen=True)
class Host:
    """A host as its own heartbeats describe it."""

    host_id: str
    zone_id: str
    state: HostState
    last_seen: datetime
    interval_seconds: float
    # The aliases its trust store holds, by its own account: it may differ from our record.
    aliases: frozenset[str] = frozenset()

    def is_up(self, now: datetime) -> bool:
        return is_up(self.state, self.last_seen, self.interval_seconds, now)


@dataclass(frozen=True)
class Placement:
    """What a host answered about a certificate: the truth, not what was asked of it."""

    host_id: str
    state: HostCertState
    reason: str | None
    updated_at: datetime

    def outcome(self) -> HostOutcome:
        return HostOutcome(
            host_id=self.host_id, state=self.state, reason=self.reason, updated_at=self.updated_at
        )


@dataclass(frozen=True)
class Certificate:
    """An uploaded certificate of one zone, and what each host did with it."""

    id: str
    alias: str
    zone_id: str
    pem: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    created_at: datetime
    hypervisor: str = "KVM"
    # A revoked certificate is never pushed again; uploading it again takes that back.
    revoked: bool = False
    expiry_warned_at: datetime | None = None
    placements: tuple[Placement, ...] = ()

    @classmethod
    def new(cls, alias: str, zone_id: str, parsed: ParsedCertificate, now: datetime) -> Certificate:
        return cls(
            id=str(uuid.uuid4()),
            alias=alias,
            zone_id=zone_id,
            pem=parsed.pem,
            subject=parsed.subject,
            issuer=parsed.issuer,
            serial=parsed.serial,
            not_before=parsed.not_before,
            not_after=parsed.not_after,
            fingerprint_sha256=parsed.fingerprint_sha256,
            created_at=now,
        )

    def view(self) -> CertificateView:
        return CertificateView(
            id=self.id,
            alias=self.alias,
            zone_id=self.zone_id,
            hypervisor=self.hypervisor,
            subject=self.subject,
            issuer=self.issuer,
            serial=self.serial,
            not_before=self.not_before,
            not_after=self.not_after,
            fingerprint_sha256=self.fingerprint_sha256,
            revoked=self.revoked,
            created_at=self.created_at,
        )

    def hosts(self) -> list[HostOutcome]:
        """Each host's recorded state, by host id."""
        return [p.outcome() for p in sorted(self.placements, key=lambda p: p.host_id)]

    def state_on(self, host_id: str) -> HostCertState | None:
        return self._states.get(host_id)

    @cached_property
    def _states(self) -> dict[str, HostCertState]:
        # A revoke asks this of every host of the zone: a scan each would be quadratic.
        return {p.host_id: p.state for p in self.placements}

    def held_by(self, host: Host) -> bool:
        """Whether `host` may hold it, by our record or by its own heartbeat (a store edited
        by hand is noticed): such a host is asked to remove it."""
        return self.state_on(host.host_id) in HELD or self.alias in host.aliases

    def placed(
        self, host_id: str, state: HostCertState, reason: str | None, now: datetime
    ) -> Certificate:
        """With what `host_id` answered, in place of what it answered before."""
        others = tuple(p for p in self.placements if p.host_id != host_id)
        return replace(self, placements=(*others, Placement(host_id, state, reason, now)))

    def warned_of_expiry_lately(self, now: datetime) -> bool:
        return self.expiry_warned_at is not None and now - self.expiry_warned_at < EXPIRY_REPEAT

    def days_left(self, now: datetime) -> int:
        return max(0, (self.not_after - now).days)
