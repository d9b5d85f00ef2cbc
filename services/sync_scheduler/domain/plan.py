"""What a sync run should do, from the zone's certificates and each host's own inventory.

A run costs one pass over the hosts plus the work on hosts that differ: a host whose store
digest equals its zone's expected digest is done in O(1), with no query of its own.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Entry = tuple[str, str]  # (alias, SHA-256 fingerprint)


def digest(entries: Iterable[Entry]) -> str:
    """The same for the same set of entries, whatever their order."""
    text = "\n".join(sorted(f"{alias.lower()} {fp.upper()}" for alias, fp in entries))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Certificate:
    id: str
    zone_id: str
    alias: str
    fingerprint: str
    revoked: bool

    @property
    def entry(self) -> Entry:
        return self.alias.lower(), self.fingerprint.upper()


@dataclass(frozen=True)
class Host:
    host_id: str
    zone_id: str
    trusted_digest: str  # digest of the entries, computed when the heartbeat arrived
    # The entries as the heartbeat listed them, one per certificate: the bulk of a host's
    # data, so they are read only for a host whose digest differs.
    read_trusted: Callable[[], Iterable[Sequence[str]]]

    @property
    def trusted(self) -> frozenset[Entry]:
        return frozenset((alias.lower(), fp.upper()) for alias, fp in self.read_trusted())


@dataclass
class Plan:
    provision: list[tuple[str, str]] = field(default_factory=list)  # (certificate id, host)
    revoke: list[tuple[str, str, str]] = field(default_factory=list)  # (id, zone, host)
    zones: set[str] = field(default_factory=set)
    hosts_checked: int = 0


def plan(
    hosts: Iterable[Host],
    certificates: Iterable[Certificate],
    zones: set[str],
    held_back: Mapping[str, set[str]] | None = None,
) -> Plan:
    """Push what an Up host of an enabled zone lacks; remove revoked ones it still has.

    `held_back` maps a host to the certificates revoked from it alone: they stay away from
    that host (and are removed if back) while the rest of the zone keeps them.
    """
    held_back = held_back or {}
    wanted: dict[str, dict[Entry, Certificate]] = defaultdict(dict)
    revoked: dict[str, dict[Entry, Certificate]] = defaultdict(dict)
    for cert in certificates:
        (revoked if cert.revoked else wanted)[cert.zone_id][cert.entry] = cert
    wanted_digest = {zone: digest(entries) for zone, entries in wanted.items()}
    empty = digest(())
    result = Plan()
    for host in hosts:
        if host.zone_id not in zones:
            continue
        result.zones.add(host.zone_id)
        result.hosts_checked += 1
        withheld = held_back.get(host.host_id, set())
        if not withheld and host.trusted_digest == wanted_digest.get(host.zone_id, empty):
            continue  # exactly what the zone wants: nothing missing, nothing revoked
        trusted = host.trusted
        for entry, cert in wanted[host.zone_id].items():
            if cert.id in withheld:
                if entry in trusted:
                    result.revoke.append((cert.id, host.zone_id, host.host_id))
            elif entry not in trusted:
                result.provision.append((cert.id, host.host_id))
        for entry, cert in revoked[host.zone_id].items():
            if entry in trusted:
                result.revoke.append((cert.id, host.zone_id, host.host_id))
    return result
