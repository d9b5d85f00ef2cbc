"""Connecting to RabbitMQ, one broker or a cluster's nodes, with heartbeats and a timeout on
resource alarms."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pika
from pika.exceptions import AMQPChannelError, AMQPConnectionError

# pika's defaults wait forever on a broker resource alarm; these make such a wait an error.
HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60

# Errors after which a new connection may succeed (pika's recover-multiple-hosts example).
RECONNECTABLE: tuple[type[BaseException], ...] = (AMQPConnectionError, AMQPChannelError)


def broker_urls(url: str) -> list[str]:
    """The brokers `url` names: one URL, or a cluster's nodes as URLs separated by commas
    (`amqp://u:p@rabbit-1/,amqp://u:p@rabbit-2/`). Every one must be of the same user,
    whose name the messages carry as their `user_id` through any of them."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("no broker URL: set AMQP_URL to amqp://user:password@host:port/")
    users = {pika.URLParameters(one).credentials.username for one in urls}
    if len(users) > 1:
        raise ValueError(
            f"the broker URLs name {len(users)} users ({', '.join(sorted(users))}): "
            "every node of a cluster must be reached as the same user"
        )
    return urls


def connection_parameters(url: str, name: str) -> pika.URLParameters:
    """Our defaults for one broker URL, unless its query sets them (`?heartbeat=5`)."""
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
    """A connection to one of `url`'s brokers. pika tries them in turn; the order is shuffled
    each time, so that replicas spread over a cluster's nodes and a reconnect after a node
    is lost does not always try the lost one first."""
    urls = broker_urls(url)
    order = random.sample(urls, len(urls))
    return pika.BlockingConnection([connection_parameters(one, name) for one in order])


def broker_user(url: str) -> str:
    """The user a connection to ``url`` authenticates as: the `user_id` its messages carry."""
    credentials = pika.URLParameters(broker_urls(url)[0]).credentials
    return str(getattr(credentials, "username", ""))


def redact(url: str) -> str:
    """``url`` (each of its brokers) with the password replaced, for messages and logs."""
    if "," in url:  # not validated here: a bad URL list still gets into the error that says so
        return ",".join(redact(one.strip()) for one in url.split(",") if one.strip())
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
