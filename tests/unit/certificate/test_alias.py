"""Keystore aliases: one DNS label, lower-cased, never one of CloudStack's own entries."""

from __future__ import annotations

import pytest

from certificate.domain.alias import check_alias
from directdl.contracts.errors import InvalidMessage

pytestmark = pytest.mark.unit


def refused(name: str, *fragments: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        check_alias(name)
    error = caught.value
    assert type(error) is InvalidMessage
    assert error.details == {"field": "name", "value": name}
    for fragment in fragments:
        assert fragment in error.message
    return error


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("a", "a"),
        ("7", "7"),
        ("mirror", "mirror"),
        ("Mirror-01", "mirror-01"),
        ("MY-CA", "my-ca"),
        ("a-b", "a-b"),
        ("a--b", "a--b"),
        ("0123", "0123"),
        ("my-cloud", "my-cloud"),
        ("cloudy", "cloudy"),
        ("cloud-ca", "cloud-ca"),
        ("cloud1", "cloud1"),
        ("clouc", "clouc"),
        ("mycloudca", "mycloudca"),
        ("x" * 63, "x" * 63),
        ("A" * 63, "a" * 63),
    ],
)
def test_a_dns_label_is_accepted_and_lower_cased(name: str, alias: str) -> None:
    assert check_alias(name) == alias


def test_sixty_three_characters_is_the_most() -> None:
    assert check_alias("a" + "-" * 61 + "b") == "a" + "-" * 61 + "b"
    name = "a" * 64
    refused(name, repr(name), "64 characters", "at most 63")


def test_a_very_long_alias_reports_its_length() -> None:
    refused("x" * 300, "300 characters", "at most 63")


def test_empty_is_refused() -> None:
    assert refused("").message == "alias must not be empty"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("my_ca", "'_'"),
        ("my.ca", "'.'"),
        ("my ca", "' '"),
        (" myca", "' '"),
        ("myca\n", "'\\n'"),
        ("my/ca", "'/'"),
        ("my:ca", "':'"),
        ("*", "'*'"),
        ("café", "'é'"),
        ("кошка", "'к'"),
        ("\uff41\uff42\uff43", "'\uff41'"),  # fullwidth: isalnum() but not DNS
        ("\u0661\u0662\u0663", "'\u0661'"),  # Arabic-Indic digits: str.isdigit() says yes
        ("ca\u200b", "'\\u200b'"),
    ],
)
def test_anything_but_ascii_letters_digits_and_hyphens_is_refused(name: str, shown: str) -> None:
    refused(name, repr(name), shown, "only ASCII letters, digits and hyphens")


def test_every_bad_character_is_named_once() -> None:
    error = refused("a_b_c.d", "'.', '_'")
    assert error.message.count("'_'") == 1


@pytest.mark.parametrize("name", ["-ca", "-", "--", "-" * 63])
def test_a_leading_hyphen_is_refused(name: str) -> None:
    refused(name, repr(name), "starts with a hyphen")


@pytest.mark.parametrize("name", ["ca-", "a-b-", "x" * 62 + "-"])
def test_a_trailing_hyphen_is_refused(name: str) -> None:
    refused(name, repr(name), "ends with a hyphen")


@pytest.mark.parametrize("name", ["cloud", "CLOUD", "Cloud", "cLoUd"])
def test_cloud_is_reserved_in_any_case(name: str) -> None:
    refused(name, repr(name), "reserved", "CloudStack")


@pytest.mark.parametrize(
    "name", ["cloudca", "cloudca-x", "cloudcafoo", "CLOUDCA-X", "CloudCA1", "cloudca-" + "x" * 55]
)
def test_the_cloudca_prefix_is_reserved_in_any_case(name: str) -> None:
    refused(name, repr(name), "starts with 'cloudca'", "CloudStack reserves")


def test_the_shape_is_checked_before_the_reserved_names() -> None:
    refused("cloudca_x", "'_'")
    refused("cloud-", "ends with a hyphen")
