"""The one redirect loop: hops checked by the policy, schemes kept to http(s), credentials home."""

from __future__ import annotations

import io
from collections.abc import Mapping
from ipaddress import ip_address

import pytest
import requests

from directdl.destinations import DestinationDenied, DestinationPolicy
from directdl.redirects import MAX_REDIRECTS, HopDenied, RedirectRefused, follow, origin

pytestmark = pytest.mark.unit

HEADERS = {"Authorization": "Bearer abc", "X-Auth-Token": "t", "X-Test": "kept"}
OPEN = DestinationPolicy(denied=())


def answer(status: int, location: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code, response.raw = status, io.BytesIO()
    if location is not None:
        response.headers["Location"] = location
    return response


class Script:
    """A `Send` answering each URL from a table; records what was asked with which headers."""

    def __init__(self, answers: Mapping[str, requests.Response]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        self.sent.append((url, dict(headers)))
        return self.answers[url]


def test_an_answer_that_is_no_redirect_is_returned_with_its_url() -> None:
    ok = answer(200)
    send = Script({"http://a.example/t.raw": ok})
    assert follow(send, "http://a.example/t.raw", HEADERS, OPEN) == (ok, "http://a.example/t.raw")
    assert send.sent == [("http://a.example/t.raw", HEADERS)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed_and_a_relative_location_resolved(status: int) -> None:
    ok = answer(200)
    send = Script(
        {"http://a.example/d/t.raw": answer(status, "../u.raw"), "http://a.example/u.raw": ok}
    )
    assert follow(send, "http://a.example/d/t.raw", {}, OPEN) == (ok, "http://a.example/u.raw")
    assert send.answers["http://a.example/d/t.raw"].raw.closed and not ok.raw.closed


def test_a_redirect_status_without_location_is_the_answer() -> None:
    bare = answer(302)
    assert follow(Script({"http://a.example/t": bare}), "http://a.example/t", {}, OPEN)[0] is bare


def test_ten_redirects_are_followed_and_eleven_refused() -> None:
    hops = {f"http://a.example/{n}": answer(302, f"/{n + 1}") for n in range(MAX_REDIRECTS + 1)}
    hops["http://a.example/11"] = answer(200)
    assert follow(Script(hops), "http://a.example/1", {}, OPEN)[1] == "http://a.example/11"
    with pytest.raises(RedirectRefused) as caught:
        follow(Script(hops), "http://a.example/0", {}, OPEN)
    assert str(caught.value) == "more than 10 redirects starting at http://a.example/0"


@pytest.mark.parametrize(
    ("first", "target", "why"),
    [
        ("http://a.example/t", "file:///etc/passwd", "which is neither http nor https"),
        ("http://a.example/t", "ftp://a.example/t", "which is neither http nor https"),
        ("https://a.example/t", "http://a.example/t", "down from https to http"),
    ],
)
def test_other_schemes_and_downgrades_are_refused_naming_both_ends(
    first: str, target: str, why: str
) -> None:
    send = Script({first: answer(302, target)})
    with pytest.raises(RedirectRefused) as caught:
        follow(send, first, {}, OPEN)
    assert str(caught.value) == f"{first} redirects to {target}, {why}"
    assert len(send.sent) == 1


def test_refusals_redact_credentials() -> None:
    first = "https://user:pw@a.example/t?sig=secret"
    with pytest.raises(RedirectRefused) as caught:
        follow(Script({first: answer(302, "http://b.example/x?token=t")}), first, {}, OPEN)
    assert "secret" not in str(caught.value) and "pw" not in str(caught.value)
    assert "token" not in str(caught.value)


def test_an_upgrade_to_https_is_followed() -> None:
    ok = answer(200)
    send = Script(
        {"http://a.example/t": answer(301, "https://a.example/t"), "https://a.example/t": ok}
    )
    assert follow(send, "http://a.example/t", {}, OPEN)[0] is ok


def test_credentials_go_only_to_their_origin_and_never_back() -> None:
    send = Script(
        {
            "http://a.example/1": answer(302, "http://a.example:80/2"),  # the same origin
            "http://a.example:80/2": answer(302, "https://a.example/3"),  # another scheme
            "https://a.example/3": answer(302, "http://a.example/4"),
        }
    )
    with pytest.raises(RedirectRefused):  # the downgrade ends it; the headers sent tell the rest
        follow(send, "http://a.example/1", HEADERS, OPEN)
    assert [headers for _, headers in send.sent] == [HEADERS, HEADERS, {"X-Test": "kept"}]

    away = Script(
        {
            "http://a.example/1": answer(302, "http://b.example/2"),
            "http://b.example/2": answer(302, "http://a.example/3"),
            "http://a.example/3": answer(200),
        }
    )
    follow(away, "http://a.example/1", HEADERS, OPEN)
    assert [headers for _, headers in away.sent] == [
        HEADERS,
        {"X-Test": "kept"},
        {"X-Test": "kept"},
    ]


def test_a_denied_address_is_refused_before_it_is_sent_to() -> None:
    policy = DestinationPolicy.parse("169.254.0.0/16", "")
    send = Script({"http://a.example/t?sig=s": answer(302, "http://169.254.169.254/latest")})
    with pytest.raises(HopDenied) as caught:
        follow(send, "http://a.example/t?sig=s", {}, policy)
    assert (caught.value.first, caught.value.hop) == (
        "http://a.example/t?sig=s",
        "http://169.254.169.254/latest",
    )
    assert (
        caught.value.redirected and caught.value.denied.rule == "in denied network 169.254.0.0/16"
    )
    assert [url for url, _ in send.sent] == ["http://a.example/t?sig=s"]


def test_a_denial_from_the_connection_names_its_hop() -> None:
    denied = DestinationDenied(
        "h.example", ip_address("10.0.0.1"), "in no allowed network", resolved=True
    )

    def send(url: str, headers: Mapping[str, str]) -> requests.Response:
        raise denied  # what a pinned connection raises once it has resolved a name

    with pytest.raises(HopDenied) as caught:
        follow(send, "http://h.example/t", {}, OPEN)
    assert caught.value.denied is denied and not caught.value.redirected
    assert caught.value.hop == caught.value.first == "http://h.example/t"


def test_what_send_raises_otherwise_passes_unchanged() -> None:
    error = requests.ConnectionError("refused")

    def send(url: str, headers: Mapping[str, str]) -> requests.Response:
        raise error

    with pytest.raises(requests.ConnectionError) as caught:
        follow(send, "http://a.example/t", {}, OPEN)
    assert caught.value is error


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://A.example/t", ("http", "a.example", 80)),
        ("https://a.example:8443/t", ("https", "a.example", 8443)),
        ("HTTPS://a.example/t", ("https", "a.example", 443)),
        ("gopher://a.example/t", ("gopher", "a.example", None)),
    ],
)
def test_origin_fills_in_the_default_port(url: str, expected: tuple[str, str, int | None]) -> None:
    assert origin(url) == expected
