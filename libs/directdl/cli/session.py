"""Sending one command from the CLI, mapping every failure to a message and an exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from pika.exceptions import AMQPError

from directdl.bus.client import BusClient, ReplyTimeout
from directdl.bus.connection import describe_error, redact
from directdl.bus.publisher import PublishError, Unroutable
from directdl.bus.topology import Topology
from directdl.cli.output import Exit, print_error, print_json
from directdl.contracts.base import Command
from directdl.contracts.errors import ErrorCode

Watch = tuple[tuple[str, ...], Callable[[str, bytes], None]]


@dataclass(frozen=True)
class Session:
    amqp_url: str
    topology: Topology
    timeout: float

    def call(
        self,
        command: Command,
        as_json: bool,
        *,
        timeout: float | None = None,
        watch: Watch | None = None,
    ) -> dict[str, Any]:
        """Send and wait; on an error reply or any failure, print it and exit non-zero.
        `watch` also shows what is published meanwhile, such as download progress."""
        try:
            with BusClient(self.amqp_url, self.topology) as client:
                if watch is not None:
                    client.watch(*watch)
                reply = client.call(command, timeout=timeout or self.timeout)
        except Unroutable as err:
            self._fail(
                Exit.UNREACHABLE, "UNREACHABLE", f"{err}; is the service running (`make run`)?"
            )
        except ReplyTimeout as err:
            self._fail(Exit.NO_REPLY, ErrorCode.TIMEOUT, f"{err}; it may still take effect")
        except (AMQPError, PublishError, OSError) as err:
            self._fail(
                Exit.UNREACHABLE,
                "UNREACHABLE",
                f"cannot reach the broker at {redact(self.amqp_url)}: {describe_error(err)}",
            )
        if as_json:
            print_json(reply.model_dump(mode="json", exclude_none=True))
        if not reply.ok:
            assert reply.error is not None
            if not as_json:
                print_error(reply.error.code, reply.error.message, reply.error.details)
            raise typer.Exit(Exit.ERROR_REPLY)
        return reply.result or {}

    def send(self, command: Command) -> str:
        """Publish without waiting for any answer; returns the message_id."""
        body = command.model_dump_json(exclude_none=True).encode()
        try:
            with BusClient(self.amqp_url, self.topology) as client:
                return client.publish(command.routing_key, body)
        except Unroutable as err:
            self._fail(Exit.UNREACHABLE, "UNREACHABLE", f"{err}; is the service running?")
        except (AMQPError, PublishError, OSError) as err:
            self._fail(Exit.UNREACHABLE, "UNREACHABLE", describe_error(err))

    @staticmethod
    def _fail(code: Exit, name: str, message: str) -> NoReturn:
        print_error(name, message)
        raise typer.Exit(code)
