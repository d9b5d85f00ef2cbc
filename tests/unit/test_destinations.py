"""The download destination policy: parsing networks, checking addresses, literals, lookups."""

from __future__ import annotations

import socket
from ipaddress import ip_address
from typing import Any

import pytest

from directdl.contracts.download import DownloadTemplate
from directdl.contracts.errors import InvalidMessage
from directdl.destinations import (
    DEFAULT_DENIED,
    DestinationDenied,
    DestinationPolicy,
    canonical_networks,
    ip_literal,
    parse_networks,
)
from directdl.settings_catalog import SETTINGS

pytestmark = pytest.mark.unit

DEFAULTS = DestinationPolicy()


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("169.254.169.254", "169.254.0.0/16"),  # cloud metadata, inside link-local
        ("169.254.1.1", "169.254.0.0/16"),
        ("fe80::1", "fe80::/10"),
        ("fd00:ec2::254", "fd00:ec2::254/128"),
        ("100.100.100.200", "100.100.100.200/32"),
        ("224.0.0.1", "224.0.0.0/4"),
        ("239.255.255.250", "224.0.0.0/4"),
        ("ff02::1", "ff00::/8"),
        ("0.0.0.0", "0.0.0.0/8"),
        ("::", "::/128"),
        ("255.255.255.255", "255.255.255.255/32"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),  # IPv4-mapped counts as IPv4
        ("::ffff:224.0.0.1", "224.0.0.0/4"),
    ],
)
def test_the_defaults_deny_metadata_link_local_multicast_and_unspecified(
    address: str, rule: str
) -> None:
    assert DEFAULTS.refusal(ip_address(address)) == f"in denied network {rule}"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd12::1", "100.100.100.201"],
)
def test_the_defaults_keep_loopback_and_private_ranges_usable(address: str) -> None:
    assert DEFAULTS.refusal(ip_address(address)) is None


def test_a_refusal_names_the_host_and_the_rule() -> None:
    with pytest.raises(DestinationDenied) as literal:
        DEFAULTS.check_literal("169.254.169.254")
    assert str(literal.value) == "169.254.169.254 is in denied network 169.254.0.0/16"
    assert (literal.value.host, literal.value.rule) == (
        "169.254.169.254",
        "in denied network 169.254.0.0/16",
    )


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("2852039166", "2852039166 (169.254.169.254)"),  # one 32-bit number
        ("0xa9fea9fe", "0xa9fea9fe (169.254.169.254)"),
        ("0251.0376.0251.0376", "0251.0376.0251.0376 (169.254.169.254)"),  # octal
        ("169.254.43518", "169.254.43518 (169.254.169.254)"),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254 (::ffff:a9fe:a9fe)"),
        ("fe80::1%eth0", "fe80::1%eth0 (fe80::1)"),
    ],
)
def test_every_spelling_of_an_address_is_checked_as_that_address(host: str, shown: str) -> None:
    with pytest.raises(DestinationDenied, match=r"is in denied network") as refused:
        DEFAULTS.check_literal(host)
    assert str(refused.value).startswith(f"{shown} is in denied network")


def test_a_name_is_left_to_resolution_and_no_lookup_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("check_literal looked a name up")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    assert ip_literal("metadata.google.internal") is None
    DEFAULTS.check_literal("metadata.google.internal")


def fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append((host, port))
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_resolve_checks_every_address_and_one_denied_refuses_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_resolver(monkeypatch, ["10.0.0.5", "169.254.169.254"])
    with pytest.raises(DestinationDenied) as refused:
        DEFAULTS.resolve("mirror.internal", 80)
    assert str(refused.value) == (
        "mirror.internal resolves to 169.254.169.254, which is in denied network 169.254.0.0/16"
    )
    assert calls == [("mirror.internal", 80)]


def test_resolve_returns_the_checked_addresses_once_each_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_resolver(monkeypatch, ["10.0.0.5", "fd12::5", "10.0.0.5"])
    assert DEFAULTS.resolve("mirror.internal", 443) == ["10.0.0.5", "fd12::5"]
    assert len(calls) == 1


def test_resolve_does_not_look_a_literal_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_resolver(monkeypatch, ["169.254.169.254"])
    assert DEFAULTS.resolve("10.0.0.7", 80) == ["10.0.0.7"]
    assert DEFAULTS.resolve("[fd12::7]", 80) == ["fd12::7"]
    assert calls == []


def test_parsing_takes_comma_separated_cidrs_and_ignores_empty_entries() -> None:
    networks = parse_networks(" 10.0.0.0/8, ,fd00::/8,192.0.2.1 ,")
    assert [str(n) for n in networks] == ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]
    assert parse_networks("") == ()
    assert canonical_networks("10.0.0.0/8 ,::ffff:0:0/96") == "10.0.0.0/8,::ffff:0:0/96"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("10.0.0.0/8,banana", "'banana'"),
        ("10.0.0.1/8", "'10.0.0.1/8'"),  # host bits set: a typo, not a network
        ("10.0.0.0/33", "'10.0.0.0/33'"),
        ("169.254.0.0/16; 10.0.0.0/8", "'169.254.0.0/16; 10.0.0.0/8'"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=f"{named} is not a network in CIDR form"):
        parse_networks(text)


def test_allowed_networks_when_given_are_the_only_ones_and_denied_wins() -> None:
    policy = DestinationPolicy.parse("10.9.0.0/16", "10.0.0.0/8,fd00::/8")
    assert policy.refusal(ip_address("10.1.2.3")) is None
    assert policy.refusal(ip_address("fd00::1")) is None
    assert policy.refusal(ip_address("192.168.1.1")) == (
        "in no allowed network (10.0.0.0/8, fd00::/8)"
    )
    assert policy.refusal(ip_address("10.9.1.1")) == "in denied network 10.9.0.0/16"


def test_an_empty_denied_list_denies_nothing() -> None:
    policy = DestinationPolicy.parse("", "")
    assert policy.refusal(ip_address("169.254.169.254")) is None


@pytest.mark.parametrize(
    "name", ["directdl.download.denied.networks", "directdl.download.allowed.networks"]
)
def test_the_settings_take_cidrs_and_refuse_a_bad_entry_by_name(name: str) -> None:
    setting = SETTINGS[name]
    assert setting.parse(" 10.0.0.0/8 , 127.0.0.2") == "10.0.0.0/8,127.0.0.2/32"
    with pytest.raises(InvalidMessage, match=r"'300\.1\.1\.1/32' is not a network"):
        setting.parse("10.0.0.0/8,300.1.1.1/32")
    with pytest.raises(InvalidMessage, match="is not text"):
        setting.parse(10)


def test_the_defaults_are_the_same_in_the_setting_the_command_and_the_policy() -> None:
    command = DownloadTemplate(
        job_id="j", deploy_id="d", template_id="t", url="http://x/a.raw", protocol="http",
        format="RAW",
    )  # fmt: skip
    assert SETTINGS["directdl.download.denied.networks"].default == ",".join(DEFAULT_DENIED)
    assert SETTINGS["directdl.download.allowed.networks"].default == ""
    assert command.denied_networks == list(DEFAULT_DENIED)
    assert command.allowed_networks == []
    assert DestinationPolicy.parse(command.denied_networks, command.allowed_networks) == DEFAULTS


def test_the_command_refuses_a_network_that_is_not_one() -> None:
    with pytest.raises(ValueError, match=r"'169\.254\.169\.254/8' is not a network"):
        DownloadTemplate(
            job_id="j", deploy_id="d", template_id="t", url="http://x/a.raw", protocol="http",
            format="RAW", denied_networks=["169.254.169.254/8"],
        )  # fmt: skip
