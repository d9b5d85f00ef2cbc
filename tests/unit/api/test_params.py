"""CloudStack's parameter map: query and form merged as ApiServlet does, control characters."""

from __future__ import annotations

import pytest

from api.cloudstack.params import BadParameter, check_printable, request_params

pytestmark = pytest.mark.unit

FORM = "application/x-www-form-urlencoded"


def test_the_query_is_decoded_plus_as_space() -> None:
    params = request_params("command=listZones&name=two+words&sum=1%2B1&e=caf%C3%A9", b"", None)
    assert params == {"command": "listZones", "name": "two words", "sum": "1+1", "e": "café"}


def test_a_bare_name_is_there_and_empty() -> None:
    assert request_params("flag&a=1", b"", None) == {"flag": "", "a": "1"}
    assert request_params("", b"flag", FORM) == {"flag": ""}


def test_empty_pieces_are_skipped_and_the_first_equals_splits() -> None:
    assert request_params("a=1&&b=x=y&", b"", None) == {"a": "1", "b": "x=y"}
    assert request_params("", b"", FORM) == {}


def test_a_name_twice_in_the_query_the_last_wins() -> None:
    assert request_params("a=1&a=2", b"", None) == {"a": "2"}


def test_a_bare_name_does_not_override_a_value_in_the_query() -> None:
    assert request_params("a=1&a", b"", None) == {"a": "1"}
    assert request_params("a&a=1", b"", None) == {"a": "1"}


def test_a_name_twice_in_the_body_the_first_wins() -> None:
    assert request_params("", b"a=1&a=2", FORM) == {"a": "1"}


def test_a_name_in_query_and_body_the_query_wins() -> None:
    params = request_params("a=query&q=1", b"a=body&b=2", FORM)
    assert params == {"a": "query", "q": "1", "b": "2"}
    assert request_params("a", b"a=body", FORM) == {"a": ""}


def test_the_form_body_is_decoded_like_the_query() -> None:
    body = b"certificate=-----BEGIN+X-----%0AMIIB%2B%2F%3D%0A&name=caf\xc3\xa9"
    params = request_params("", body, f"{FORM}; charset=UTF-8")
    assert params == {"certificate": "-----BEGIN X-----\nMIIB+/=\n", "name": "café"}
    assert request_params("", b"a=1", FORM.upper()) == {"a": "1"}


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "multipart/form-data; boundary=x", "text/plain"]
)
def test_a_body_of_another_type_is_ignored(content_type: str | None) -> None:
    assert request_params("a=1", b"b=2", content_type) == {"a": "1"}


def test_raw_bytes_in_the_query_arrive_as_latin_1_and_are_utf8() -> None:
    raw = "name=caf\u00e9".encode().decode("latin-1")
    assert request_params(raw, b"", None) == {"name": "café"}


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("a=%C3", b""),
        ("a=%ZZ", b""),
        ("a=%4", b""),
        ("%FF=1", b""),
        ("", b"a=\xff"),
        ("a=\u20ac", b""),
    ],
)
def test_undecodable_parameters_are_bad(query: str, body: bytes) -> None:
    with pytest.raises(BadParameter):
        request_params(query, body, FORM)


def test_a_bad_value_is_reported_by_its_name_never_its_value() -> None:
    with pytest.raises(BadParameter) as raised:
        request_params("certificate=" + "A" * 5000 + "%FF", b"", None)
    assert "certificate" in str(raised.value)
    assert "AAAA" not in str(raised.value)


def test_lf_and_cr_are_printable() -> None:
    check_printable({"certificate": "-----BEGIN-----\r\nMIIB\n-----END-----\n", "e": "é\x85"})


@pytest.mark.parametrize("char", list("\x00\x01\t\x0b\x0c\x0e\x1b\x1f\x7f"))
def test_a_control_character_is_refused_with_cloudstacks_text(char: str) -> None:
    with pytest.raises(BadParameter) as raised:
        check_printable({"command": "listZones", "name": f"a{char}b"})
    assert str(raised.value) == (
        "Received value containing illegal ASCII non-printable characters for parameter name"
    )


def test_the_message_shows_a_long_or_odd_name_safely() -> None:
    with pytest.raises(BadParameter) as raised:
        check_printable({"x\r\n" * 1000: "\x00" + "v" * 10_000})
    message = str(raised.value)
    assert len(message) < 200
    assert "\r" not in message
    assert "\n" not in message
    assert "vvv" not in message
