"""UrlChecker against real local servers: redirects followed as the hosts follow them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from directdl.contracts.errors import ErrorCode, MessageError
from directdl.contracts.template import SourceProtocol
from directdl.destinations import DestinationPolicy
from directdl_testing.faulty_http import FaultyServer
from directdl_testing.listeners import CountingListener, ScriptedServer
from registration.adapters.url_check import UrlChecker

pytestmark = pytest.mark.integration

DATA = b"x" * 1234
DENY_2 = UrlChecker(
    connect_timeout=2, read_timeout=2, policy=DestinationPolicy.parse("127.0.0.2/32", "")
)


@pytest.fixture
def trap() -> Iterator[CountingListener]:
    with CountingListener("127.0.0.2") as listener:
        yield listener


def refusal(
    checker: UrlChecker, url: str, protocol: SourceProtocol = SourceProtocol.HTTP
) -> MessageError:
    with pytest.raises(MessageError) as caught:
        checker.size_of(url, protocol, {})
    return caught.value


def test_a_redirect_is_followed_to_the_size() -> None:
    with FaultyServer(DATA) as target, ScriptedServer(302, {"Location": target.url}) as hop:
        assert DENY_2.size_of(hop.url("/d.raw"), SourceProtocol.HTTP, {}) == len(DATA)


def test_a_redirect_to_a_denied_address_is_refused_unconnected(trap: CountingListener) -> None:
    with ScriptedServer(302, {"Location": trap.url("/latest")}) as hop:
        error = refusal(DENY_2, hop.url("/d.raw?sig=secret"))
    assert error.code is ErrorCode.DESTINATION_DENIED
    assert f"leads to '{trap.url('/latest')}'" in error.message and "secret" not in error.message
    assert trap.accepted == 0


@pytest.mark.parametrize(
    ("location", "why"),
    [("file:///etc/passwd", "which is neither http nor https"), ("ftp://127.0.0.1/x", "neither")],
)
def test_a_redirect_off_http_is_unreachable(location: str, why: str) -> None:
    with ScriptedServer(302, {"Location": location}) as hop:
        error = refusal(DENY_2, hop.url("/d.raw"))
    assert error.code is ErrorCode.URL_UNREACHABLE
    assert location in error.message and why in error.message


def test_endless_redirects_are_unreachable() -> None:
    with ScriptedServer(302, {"Location": "/again"}) as hop:
        error = refusal(DENY_2, hop.url("/d.raw"))
    assert error.code is ErrorCode.URL_UNREACHABLE and "more than 10 redirects" in error.message
    assert hop.requests == 11


def test_credentials_are_not_sent_to_another_host() -> None:
    headers = {"Authorization": "Bearer abc", "Cookie": "c=1", "X-Test": "kept"}
    with FaultyServer(DATA) as target:
        away = f"http://localhost:{target.port}/file"
        with ScriptedServer(302, {"Location": away}) as hop:
            assert DENY_2.size_of(hop.url("/d.raw"), SourceProtocol.HTTP, headers) == len(DATA)
    seen = target.requests[0].headers
    assert seen["x-test"] == "kept" and "authorization" not in seen and "cookie" not in seen


def test_a_server_only_protocol_is_checked_where_it_points_and_not_read(
    trap: CountingListener,
) -> None:
    error = refusal(DENY_2, f"nfs://127.0.0.2:{trap.port}/export/d.raw", SourceProtocol.NFS)
    assert error.code is ErrorCode.DESTINATION_DENIED and trap.accepted == 0
    assert DENY_2.size_of("nfs://127.0.0.1/export/d.raw", SourceProtocol.NFS, {}) is None
