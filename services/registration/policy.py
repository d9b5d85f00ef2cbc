"""What each download command carries besides the template: timeouts, retries, the
destination policy and the pools' cache limits, read from the live settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from directdl.contracts.download import Timeouts
from directdl.contracts.pool import CachePolicy
from directdl.destinations import DestinationPolicy, parse_networks
from directdl.settings_catalog import CACHE_MAX_AGE, CACHE_MAX_BYTES, default_of

DENIED_NETWORKS = "directdl.download.denied.networks"
ALLOWED_NETWORKS = "directdl.download.allowed.networks"


@dataclass(frozen=True)
class DownloadPolicy:
    """What each download command carries besides the template, read from the live settings
    at each deploy, so that a change applies to the next one without a restart."""

    setting: Callable[[str], int | float | str] = default_of

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(
            connect_ms=int(self.setting("direct.download.connect.timeout")),
            socket_ms=int(self.setting("direct.download.socket.timeout")),
            connection_request_ms=int(self.setting("direct.download.connection.request.timeout")),
        )

    @property
    def max_attempts(self) -> int:
        return int(self.setting("directdl.download.retries"))

    @property
    def checksum_attempts(self) -> int:
        return int(self.setting("directdl.download.checksum.attempts"))

    @property
    def denied_networks(self) -> list[str]:
        return [str(n) for n in parse_networks(str(self.setting(DENIED_NETWORKS)))]

    @property
    def allowed_networks(self) -> list[str]:
        return [str(n) for n in parse_networks(str(self.setting(ALLOWED_NETWORKS)))]

    @property
    def destinations(self) -> DestinationPolicy:
        return DestinationPolicy.parse(self.denied_networks, self.allowed_networks)

    @property
    def cache(self) -> CachePolicy:
        """The pools' limits, which every download and eviction command carries: a host
        learns of a change with the next command it is sent."""
        return CachePolicy(
            max_bytes=int(self.setting(CACHE_MAX_BYTES)),
            max_age_s=int(self.setting(CACHE_MAX_AGE)),
        )
