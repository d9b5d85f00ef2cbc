"""Every global setting: its owner, type, default, unit and bounds, known to all services.

The four direct.download.* settings keep CloudStack's names, defaults and units; the directdl.*
ones are knobs CloudStack hard-codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from directdl.contracts.bounds import BYTES_MAX, SECONDS_MAX
from directdl.contracts.errors import InvalidMessage, NotFound
from directdl.contracts.settings import SettingView
from directdl.destinations import DEFAULT_DENIED, canonical_networks

REGISTRATION = "registration"
CERTIFICATE = "certificate"
SCHEDULER = "sync-scheduler"

MAX_MESSAGE_BYTES = "directdl.message.max.bytes"
CACHE_MAX_BYTES = "directdl.pool.cache.max.bytes"
CACHE_MAX_AGE = "directdl.pool.cache.max.age"
PREPARE_CONCURRENCY = "directdl.template.prepare.concurrency"


@dataclass(frozen=True)
class Setting:
    name: str
    owner: str
    kind: type[int] | type[float] | type[str]
    default: int | float | str
    unit: str
    minimum: float  # for a str setting, bounds on its length
    maximum: float
    description: str
    hidden: bool = False
    # A str setting's check: the value in canonical form, or ValueError saying what is wrong.
    normalize: Callable[[str], str] = str

    def parse(self, raw: str | int | float) -> int | float | str:
        """The value as this setting's type, or InvalidMessage naming the value and the range."""
        if self.kind is str:
            return self._parse_text(raw)
        value: int | float
        try:
            value = raw if isinstance(raw, int | float) else self._number(raw)
        except ValueError:
            raise self._invalid(raw, "is not a number") from None
        if isinstance(value, bool) or not math.isfinite(value):
            raise self._invalid(raw, "is not a number")
        if self.kind is int:
            if value != int(value):
                raise self._invalid(raw, "is not a whole number")
            value = int(value)
        if not self.minimum <= value <= self.maximum:
            raise self._invalid(
                raw, f"is out of range {self.minimum:g} to {self.maximum:g} {self.unit}"
            )
        return value

    def _number(self, raw: str) -> int | float:
        # A whole number as text is read exactly: through a float, a byte count above 2**53
        # would silently become another.
        if self.kind is int and raw.strip().lstrip("+-").isdecimal():
            return int(raw)
        return float(raw)  # "1e9" or "2.0" too: a float that may still be whole

    def _parse_text(self, raw: str | int | float) -> str:
        if not isinstance(raw, str):
            raise self._invalid(raw, "is not text")
        if not self.minimum <= len(raw) <= self.maximum:
            raise self._invalid(raw, f"is not {self.minimum:g} to {self.maximum:g} characters")
        try:
            return self.normalize(raw)
        except ValueError as err:
            raise self._invalid(raw, f"is refused: {err}") from None

    def view(self, value: int | float | str) -> SettingView:
        return SettingView(
            name=self.name,
            value=value,
            default=self.default,
            unit=self.unit,
            owner=self.owner,
            hidden=self.hidden,
            description=self.description,
        )

    def _invalid(self, raw: object, why: str) -> InvalidMessage:
        return InvalidMessage(
            f"value {raw!r} for {self.name} {why}",
            details={"field": "value", "name": self.name, "value": raw},
        )


MILLIS = (1, 3_600_000)
CIDR_TEXT = (0, 4096)  # characters

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "direct.download.connect.timeout",
            REGISTRATION,
            int,
            5000,
            "ms",
            *MILLIS,
            "Connection establishment timeout for direct downloads.",
        ),
        Setting(
            "direct.download.socket.timeout",
            REGISTRATION,
            int,
            5000,
            "ms",
            *MILLIS,
            "Socket timeout (SO_TIMEOUT): the longest wait for data during a download.",
        ),
        Setting(
            "direct.download.connection.request.timeout",
            REGISTRATION,
            int,
            5000,
            "ms",
            *MILLIS,
            "Timeout for requesting a connection from the connection manager.",
            hidden=True,
        ),
        Setting(
            "direct.download.certificate.background.task.interval",
            SCHEDULER,
            float,
            0,
            "hours",
            0,
            8760,
            "How often hosts' certificates are brought up to date; 0 disables the task.",
        ),
        Setting(
            "directdl.download.retries",
            REGISTRATION,
            int,
            5,
            "attempts",
            1,
            20,
            "Attempts per host for a download that fails transiently (resumed, backed off).",
        ),
        Setting(
            "directdl.download.checksum.attempts",
            REGISTRATION,
            int,
            2,
            "downloads",
            1,
            5,
            "Downloads before a checksum mismatch is final.",
        ),
        Setting(
            "directdl.download.denied.networks",
            REGISTRATION,
            str,
            ",".join(DEFAULT_DENIED),
            "CIDRs",
            *CIDR_TEXT,
            "Comma-separated networks no download may connect to, even through a redirect "
            "or a metalink mirror; they win over the allowed ones.",
            normalize=canonical_networks,
        ),
        Setting(
            "directdl.download.allowed.networks",
            REGISTRATION,
            str,
            "",
            "CIDRs",
            *CIDR_TEXT,
            "Comma-separated networks downloads may connect to; empty allows all not denied.",
            normalize=canonical_networks,
        ),
        Setting(
            "directdl.certificate.expiry.warning.days",
            CERTIFICATE,
            int,
            30,
            "days",
            0,
            3650,
            "cert.expiring is published this many days before a certificate expires.",
        ),
        Setting(
            "directdl.certificate.host.timeout",
            CERTIFICATE,
            float,
            30,
            "seconds",
            1,
            3600,
            "How long a host has to answer a certificate command before it counts as FAILED.",
        ),
        Setting(
            CACHE_MAX_BYTES,
            REGISTRATION,
            int,
            0,
            "bytes",
            0,
            BYTES_MAX,
            "The total size of the template copies each pool keeps; past it, copies no deploy "
            "or download is using go. 0: no cap.",
        ),
        Setting(
            CACHE_MAX_AGE,
            REGISTRATION,
            int,
            0,
            "seconds",
            0,
            int(SECONDS_MAX),
            "A template copy unused for this long leaves its pool. 0: no limit.",
        ),
        Setting(
            PREPARE_CONCURRENCY,
            REGISTRATION,
            int,
            4,
            "hosts",
            1,
            1000,
            "How many hosts a template.prepare downloads to at once; the others wait their "
            "turn. Read when a prepare starts.",
        ),
        Setting(
            MAX_MESSAGE_BYTES,
            REGISTRATION,
            int,
            1 << 20,
            "bytes",
            256 * 1024,  # room for the largest certificate chain a command may carry
            128 << 20,  # RabbitMQ's own default limit
            "A message body larger than this is refused unread, as INVALID_MESSAGE; every "
            "service that knows the setting applies it.",
        ),
    )
}


def lookup(name: str) -> Setting:
    setting = SETTINGS.get(name)
    if setting is None:
        raise NotFound(
            f"no setting named {name!r}; known settings: {', '.join(sorted(SETTINGS))}",
            details={"field": "name", "value": name},
        )
    return setting


def owned_by(service: str) -> list[Setting]:
    return [s for s in SETTINGS.values() if s.owner == service]


def default_of(name: str) -> int | float | str:
    """A setting's value until anyone changes it: what a service reads without live settings."""
    return SETTINGS[name].default
