"""Connecting to RabbitMQ with heartbeats and a timeout on resource alarms."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

import pika
from pika.exceptions import AMQPChannelError, AMQPConnectionError

# pika's defaults wait forever on a broker resource alarm; these make such a wait an error.
HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60

# Errors after which a new connection may succeed (pika's recover-multiple-hosts example).
RECONNECTABLE: tuple[type[BaseException], ...] = (AMQPConnectionError, AMQPChannelError)


def connection_parameters(url: str, name: str) -> pika.URLParameters:
    """Our defaults, unless the URL's query sets them (`?heartbeat=5`)."""
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = HEARTBEAT_SECONDS
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_SECONDS
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name}
    return params


def connect(url: str, name: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(url, name))


def broker_user(url: str) -> str:
    """The user a connection to ``url`` authenticates as: the `user_id` its messages carry."""
    credentials = pika.URLParameters(url).credentials
    return str(getattr(credentials, "username", ""))


def redact(url: str) -> str:
    """``url`` with its password replaced, so it can go into messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe_error(err: BaseException) -> str:
    """One line naming the error; pika's connection errors keep their cause only in args."""
    text = str(err).strip() or "; ".join(repr(arg) for arg in err.args)
    first_line = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__
