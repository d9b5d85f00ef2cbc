"""Sending one command from the CLI, mapping every failure to a message and an exit code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from pika.exceptions import AMQPError

from directdl.bus.client import BusClient, ReplyTimeout
from directdl.bus.connection import describe_error, redact
from directdl.bus.publisher import PublishError, Unroutable
from directdl.bus.topology import Topology
from directdl.cli.output import Exit, print_error, print_reply
from directdl.contracts.base import Command
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply

Watch = tuple[tuple[str, ...], Callable[[str, bytes], None]]
# Watched messages are delivered while pumping: short slices keep `done` checked often.
PUMP_SLICE_S = 0.2


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
        with self._failures_mapped(), BusClient(self.amqp_url, self.topology) as client:
            if watch is not None:
                client.watch(*watch)
            reply = client.call(command, timeout=timeout or self.timeout)
        return _result(reply, as_json)

    @contextmanager
    def watching(self, watch: Watch) -> Iterator[Conversation]:
        """A connection whose queue is bound to `watch` before anything is sent, so that no
        event a command leads to is missed, however fast it follows; failures as for `call`."""
        with self._failures_mapped(), BusClient(self.amqp_url, self.topology) as client:
            client.watch(*watch)
            yield Conversation(client)

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

    def fetch(self, command: Command) -> Reply:
        """The reply, printing nothing; a failure to get one raises NoReply."""
        with self._failures_raised(), BusClient(self.amqp_url, self.topology) as client:
            return client.call(command, timeout=self.timeout)

    @contextmanager
    def _failures_mapped(self) -> Iterator[None]:
        try:
            with self._failures_raised():
                yield
        except NoReply as failure:
            print_error(failure.code, failure.message)
            raise typer.Exit(failure.exit) from None

    @contextmanager
    def _failures_raised(self) -> Iterator[None]:
        try:
            yield
        except Unroutable as err:
            raise NoReply(
                Exit.UNREACHABLE, "UNREACHABLE", f"{err}; is the service running (`make run`)?"
            ) from err
        except ReplyTimeout as err:
            raise NoReply(
                Exit.NO_REPLY, ErrorCode.TIMEOUT, f"{err}; it may still take effect"
            ) from err
        except (AMQPError, PublishError, OSError) as err:
            raise NoReply(
                Exit.UNREACHABLE,
                "UNREACHABLE",
                f"cannot reach the broker at {redact(self.amqp_url)}: {describe_error(err)}",
            ) from err

    @staticmethod
    def _fail(code: Exit, name: str, message: str) -> NoReturn:
        print_error(name, message)
        raise typer.Exit(code)


class NoReply(Exception):
    """No reply to read: the exit code, the error code and the message that say why."""

    def __init__(self, exit_code: Exit, code: str, message: str) -> None:
        super().__init__(message)
        self.exit = exit_code
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Conversation:
    """One command and the events that follow it, over the connection `Session.watching`
    opened."""

    client: BusClient

    def call(
        self, command: Command, as_json: bool, *, timeout: float, echo: bool = True
    ) -> dict[str, Any]:
        """As `Session.call`; the watched events keep arriving meanwhile."""
        reply = self.client.call(command, timeout=timeout)
        return _result(reply, as_json, echo)

    def wait(self, done: Callable[[], bool], seconds: float) -> bool:
        """Deliver watched events until `done()` or `seconds` pass; returns `done()`."""
        deadline = time.monotonic() + seconds
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.client.pump(min(remaining, PUMP_SLICE_S))
        return True


def _result(reply: Reply, as_json: bool, echo: bool = True) -> dict[str, Any]:
    """The result of a success; an error reply is printed and exits 1. `echo`: also print
    a success as JSON when `as_json` (False when the caller prints it, with more)."""
    if as_json and (echo or not reply.ok):
        print_reply(reply.model_dump(mode="json", exclude_none=True))
    if not reply.ok:
        assert reply.error is not None
        if not as_json:
            print_error(reply.error.code, reply.error.message, reply.error.details)
        raise typer.Exit(Exit.ERROR_REPLY)
    return reply.result or {}
