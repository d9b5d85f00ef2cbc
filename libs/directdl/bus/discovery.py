"""Ask every running process to announce itself, and collect what they say for a moment."""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from directdl.bus.client import BusClient
from directdl.bus.publisher import Unroutable
from directdl.bus.topology import Topology
from directdl.contracts.service import DiscoverServices, ServiceAnnounced

# stdlib, as in bus.client: the CLI configures no logging, and its stdout may be JSON.
log = logging.getLogger(__name__)


def discover(amqp_url: str, topology: Topology, seconds: float = 1.5) -> list[ServiceAnnounced]:
    """The processes that answered service.discover within `seconds`, one per instance,
    sorted by service. None when nothing is bound to hear it: no service has started.

    Raises what the broker raises (pika's AMQPError, OSError) unchanged."""
    found: dict[str, ServiceAnnounced] = {}

    def on_announced(_routing_key: str, body: bytes, sender: str | None) -> None:
        try:
            announced = ServiceAnnounced.model_validate_json(body)
        except ValidationError as err:
            # Someone else's malformed message must not hide the others' answers.
            log.warning("ignored a malformed service.announced: %s", err)
            return
        # A host agent may publish announcements, but only its own: one naming another
        # process would send `status` to a URL of the sender's choosing.
        refusal = ServiceAnnounced.sent_by.refusal(sender, announced)
        if refusal is not None:
            log.warning("ignored a service.announced for %s from %s", announced.service, sender)
            return
        found.setdefault(announced.instance, announced)

    with BusClient(amqp_url, topology, app_id="directdl-discovery") as client:
        # Bound before asking, so that no answer can come before anyone listens.
        client.watch_senders((ServiceAnnounced.routing_key,), on_announced)
        try:
            client.publish(
                DiscoverServices.routing_key, DiscoverServices().model_dump_json().encode()
            )
        except Unroutable:
            return []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            client.pump(remaining)
    return sorted(found.values(), key=lambda a: (a.service, a.instance))
