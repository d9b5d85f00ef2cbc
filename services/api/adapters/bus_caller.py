"""directdl's bus as the HTTP threads use it: a connection per thread, a reply per command, and
every broker failure an answer in CloudStack's shape, never a hang."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import structlog
from pika.exceptions import AMQPError

from api.cloudstack import errors
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode
from directdl.bus.client import BusClient, ReplyTimeout
from directdl.bus.connection import describe_error, redact
from directdl.bus.delivery import new_message_id
from directdl.bus.publisher import PublishError, Unroutable
from directdl.bus.topology import Topology
from directdl.contracts.base import Command
from directdl.contracts.reply import Reply

log = structlog.get_logger(__name__)

ATTEMPTS = 2
# The app_id of the HTTP threads' connections and messages, apart from the consumer's.
APP_ID = "api-http"


class BusCaller:
    """pika's connections are not thread-safe, so each HTTP thread keeps its own; a thread
    whose connection failed opens a new one at its next request."""

    def __init__(self, url: str, topology: Topology, timeout: float) -> None:
        self.url = url
        self.topology = topology
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[BusClient] = []
        self._lock = threading.Lock()

    def call(self, command: Command, message_id: str | None = None) -> dict[str, Any]:
        """The command's result; its refusal, a timeout or a broker failure as an ApiError."""
        reply = self.ask(command, message_id=message_id, timeout=self.timeout)
        if reply.ok:
            return reply.result or {}
        assert reply.error is not None
        raise errors.from_directdl(reply.error)

    def ask(self, command: Command, message_id: str | None, timeout: float) -> Reply:
        """The reply itself, whatever it says; a timeout or a broker failure as an ApiError."""
        body = command.model_dump_json(exclude_none=True).encode()
        return self.ask_raw(command.routing_key, body, message_id, timeout)

    def ask_raw(
        self, routing_key: str, body: bytes, message_id: str | None, timeout: float
    ) -> Reply:
        """As `ask`, for a command as sent before: the same bytes under the same message_id,
        which the inbox of the service that took it answers again without redoing it."""
        # Sent under one message_id, so that a second try after a lost connection is answered
        # from the inbox if the first got through, and never done twice.
        message_id = message_id or new_message_id()
        for attempt in range(1, ATTEMPTS + 1):
            client = self._client(routing_key)
            try:
                return client.call_raw(routing_key, body, timeout=timeout, message_id=message_id)
            except ReplyTimeout as err:
                raise ApiError(
                    ApiErrorCode.INTERNAL_ERROR,
                    f"no answer from directdl to {routing_key} within {timeout:g} s; "
                    "it may still take effect",
                    CsErrorCode.OPERATION_TIMED_OUT,
                ) from err
            except Unroutable as err:
                raise self._unavailable(routing_key, err) from err
            except (AMQPError, OSError, PublishError) as err:
                # A thread idle for longer than two heartbeats finds its connection closed
                # by the broker: one new connection, and only then is the broker down.
                self._forget(client)
                if attempt == ATTEMPTS:
                    raise self._unavailable(routing_key, err) from err
                log.info("bus.reconnecting", routing_key=routing_key, error=describe_error(err))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except (AMQPError, OSError):
                log.debug("bus.close_failed", exc_info=True)

    def _client(self, routing_key: str) -> BusClient:
        client: BusClient | None = getattr(self._local, "client", None)
        if client is not None:
            return client
        try:
            client = BusClient(self.url, self.topology, app_id=APP_ID)
        except (AMQPError, OSError) as err:
            raise self._unavailable(routing_key, err) from err
        self._local.client = client
        with self._lock:
            self._clients.append(client)
        return client

    def _forget(self, client: BusClient) -> None:
        self._local.client = None
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        # It is being dropped because it failed; closing it may fail too.
        with contextlib.suppress(AMQPError, OSError):
            client.close()

    def _unavailable(self, what: str, err: BaseException) -> ApiError:
        log.warning("bus.unavailable", what=what, error=describe_error(err))
        return ApiError(
            ApiErrorCode.RESOURCE_UNAVAILABLE,
            f"directdl's message bus ({redact(self.url)}) could not take {what}: "
            f"{describe_error(err)}",
            CsErrorCode.RESOURCE_UNAVAILABLE,
        )
