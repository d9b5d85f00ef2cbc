"""Where downloads may connect: the destination policy, and HTTP connections pinned to it."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, ClassVar

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Never a template source: link-local (cloud metadata lives at 169.254.169.254), the other
# metadata addresses (AWS over IPv6, Alibaba), multicast, "this host" and broadcast.
# Loopback and private ranges stay usable: internal mirrors are the common case.
DEFAULT_DENIED: tuple[str, ...] = (
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "224.0.0.0/4",
    "ff00::/8",
    "0.0.0.0/8",
    "::/128",
    "255.255.255.255/32",
)


class DestinationDenied(Exception):
    """The policy refuses `address`, which `host` is or resolves to, by `rule`.

    Deliberately not an OSError: urllib3 and requests must not retry or wrap it.
    """

    def __init__(self, host: str, address: Address, rule: str, *, resolved: bool) -> None:
        self.host, self.address, self.rule = host, address, rule
        if resolved:
            shown = f"{host} resolves to {address}, which"
        else:  # a literal: named as written, and as read when that differs (0xa9fea9fe)
            shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
        super().__init__(f"{shown} is {rule}")


@lru_cache(maxsize=1024)
def parse_network(entry: str) -> Network:
    """One CIDR (a bare address is a /32 or /128); ValueError naming the entry otherwise.
    Remembered: the policies are parsed from the settings for every registration."""
    try:
        return ip_network(entry.strip())
    except ValueError as err:
        raise ValueError(f"{entry.strip()!r} is not a network in CIDR form ({err})") from None


def parse_networks(entries: str | Iterable[str]) -> tuple[Network, ...]:
    """Comma-separated CIDRs (or a list of them); empty entries are ignored."""
    items = entries.split(",") if isinstance(entries, str) else entries
    return tuple(parse_network(item) for item in items if item.strip())


def canonical_network(entry: str) -> str:
    """`entry` as its network's canonical text, for messages and settings."""
    return str(parse_network(entry))


def canonical_networks(entries: str) -> str:
    """Comma-separated CIDRs in canonical form; ValueError naming the first bad entry."""
    return ",".join(str(network) for network in parse_networks(entries))


def ip_literal(host: str) -> Address | None:
    """The address `host` spells, or None for a name. Also the legacy IPv4 spellings that
    resolvers accept without asking DNS (2852039166, 0xa9.0376.43518), so none slips past."""
    host = host.strip("[]")
    try:
        return ip_address(host.split("%", 1)[0])  # a zone (fe80::1%eth0) is not the address
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@dataclass(frozen=True)
class DestinationPolicy:
    """An address is refused when it is in a denied network, or when `allowed` is not empty
    and it is in none of those. Denied wins. An IPv4-mapped IPv6 address counts as IPv4."""

    denied: tuple[Network, ...] = parse_networks(DEFAULT_DENIED)
    allowed: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, denied: str | Iterable[str], allowed: str | Iterable[str]) -> DestinationPolicy:
        return cls(denied=parse_networks(denied), allowed=parse_networks(allowed))

    def refusal(self, address: Address) -> str | None:
        """Why `address` is refused ("in denied network 169.254.0.0/16"), None when it is not."""
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for network in self.denied:
            if address in network:
                return f"in denied network {network}"
        if self.allowed and not any(address in network for network in self.allowed):
            return f"in no allowed network ({', '.join(str(n) for n in self.allowed)})"
        return None

    def check_address(self, host: str, address: Address, *, resolved: bool = False) -> None:
        """Raise DestinationDenied if `address`, which `host` is (or resolved to), is refused."""
        rule = self.refusal(address)
        if rule is not None:
            raise DestinationDenied(host, address, rule, resolved=resolved)

    def check_literal(self, host: str) -> None:
        """Refuse `host` if it is an address the policy denies; a name waits for resolve()."""
        address = ip_literal(host)
        if address is not None:
            self.check_address(host, address)

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address of `host`, each checked, in the resolver's order: connect to these
        and nothing else, so that a second DNS answer cannot point elsewhere. One denied
        address refuses the host. socket.gaierror when it does not resolve."""
        literal = ip_literal(host)
        if literal is not None:
            self.check_address(host, literal)
            return [str(literal)]
        found: list[str] = []
        for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            text = str(sockaddr[0])
            address = ip_address(text.split("%", 1)[0])
            self.check_address(host, address, resolved=True)
            if text not in found:
                found.append(text)
        return found


class _Pinned:
    """Opens the socket to an address the policy checked, never to a fresh lookup; the TLS
    server name, the certificate check and the Host header stay on the URL's host name."""

    policy: ClassVar[DestinationPolicy]

    def _new_conn(self) -> socket.socket:
        conn: Any = self  # mixed into urllib3's HTTPConnection, whose attributes these are
        host, port = conn.host, conn.port
        try:
            addresses = self.policy.resolve(host, port)
        except socket.gaierror as err:
            raise NameResolutionError(host, conn, err) from err
        last: OSError | None = None
        for address in addresses:
            try:
                sock = _connect(address, conn)
            except OSError as err:
                last = err
                continue
            sys.audit("http.client.connect", conn, host, port)
            return sock
        if isinstance(last, TimeoutError):
            message = f"Connection to {host} timed out. (connect timeout={conn.timeout})"
            raise ConnectTimeoutError(conn, message) from last
        raise NewConnectionError(conn, f"Failed to establish a new connection: {last}") from last


def _connect(address: str, conn: Any) -> socket.socket:
    """A TCP socket to `address`, as urllib3 would open it for `conn`, but connected to the
    address itself: nothing here asks the resolver again."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in conn.socket_options or ():
            sock.setsockopt(*option)
        timeout = conn.timeout
        if timeout is None or isinstance(timeout, int | float):  # else urllib3's "default"
            sock.settimeout(timeout)
        if conn.source_address:
            sock.bind(conn.source_address)
        sock.connect((address, conn.port))
    except BaseException:
        sock.close()
        raise
    return sock


def pinned_pools(policy: DestinationPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes, by scheme, whose connections `policy` pins."""

    class Http(_Pinned, HTTPConnection):
        pass

    class Https(_Pinned, HTTPSConnection):
        pass

    Http.policy = Https.policy = policy

    class HttpPool(HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(HTTPSConnectionPool):
        ConnectionCls = Https

    return {"http": HttpPool, "https": HttpsPool}


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that connects only where `policy` allows, to the address it checked.
    A refusal comes out of the request as DestinationDenied."""

    def __init__(self, policy: DestinationPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = pinned_pools(self.policy)
