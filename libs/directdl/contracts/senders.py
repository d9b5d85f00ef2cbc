"""Who may send a message: checked against the broker user RabbitMQ validated in `user_id`.

RabbitMQ refuses a publish whose `user_id` property differs from the connection's user, so a
consumer that reads `user_id` knows who really sent a message, whatever its body claims. Each
service connects as the user named after it, and each host agent as `host-agent-<host id>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGISTRATION = "registration"
CERTIFICATE = "certificate"
SYNC_SCHEDULER = "sync-scheduler"
SERVICES = (REGISTRATION, CERTIFICATE, SYNC_SCHEDULER)
# The CloudStack API gateway: a client of the others, which sends what operators send, so it
# is trusted as an operator is and never as the services above are.
GATEWAY = "api"
CENTRAL = (*SERVICES, GATEWAY)
"""Every service with its own database and broker user, besides the host agents."""
HOST_USER_PREFIX = "host-agent-"


def host_user(host_id: str) -> str:
    """The broker user a host agent connects as."""
    return f"{HOST_USER_PREFIX}{host_id}"


def is_host_user(user_id: str | None) -> bool:
    return bool(user_id) and str(user_id).startswith(HOST_USER_PREFIX)


@dataclass(frozen=True)
class Refusal:
    """Why a sender may not send a message: the real sender, and who was required."""

    sender: str | None
    required: str

    def __str__(self) -> str:
        return f"sent by {self.sender or 'an unnamed user'}, but only {self.required} may send it"


@dataclass(frozen=True)
class Operators:
    """Operators, their tools and the services; never a host agent, which may send only what
    it reports about itself."""

    def describe(self) -> str:
        return "any broker user but a host agent's"

    def refusal(self, user_id: str | None, message: Any) -> Refusal | None:
        if is_host_user(user_id):
            return Refusal(user_id, "an operator or a service")
        return None


@dataclass(frozen=True)
class Services:
    """Only these services; the commands a host executes, the events a service announces."""

    names: tuple[str, ...]

    def describe(self) -> str:
        return "the broker user " + " or ".join(f"`{name}`" for name in self.names)

    def refusal(self, user_id: str | None, message: Any) -> Refusal | None:
        if user_id in self.names:
            return None
        return Refusal(user_id, " or ".join(self.names))


@dataclass(frozen=True)
class HostNamed:
    """Only the host agent the message is about: its `host_id` field names the sender."""

    field: str = "host_id"

    def describe(self) -> str:
        return f"the broker user `{HOST_USER_PREFIX}{{{self.field}}}` of the host it names"

    def refusal(self, user_id: str | None, message: Any) -> Refusal | None:
        required = host_user(str(getattr(message, self.field)))
        return None if user_id == required else Refusal(user_id, required)


@dataclass(frozen=True)
class SelfNamed:
    """Only the broker user the message names in `field`: a process speaking for itself."""

    field: str = "service"

    def describe(self) -> str:
        return f"the broker user named in its `{self.field}` field"

    def refusal(self, user_id: str | None, message: Any) -> Refusal | None:
        required = str(getattr(message, self.field))
        return None if user_id == required else Refusal(user_id, required)


SenderRule = Operators | Services | HostNamed | SelfNamed
ANY_OPERATOR = Operators()
THE_HOST = HostNamed()
