"""Every download failure code says whether another host may succeed, and keeps its wire value."""

from __future__ import annotations

import pytest

from directdl.contracts.download import (
    ANOTHER_HOST_MAY_SUCCEED,
    EVERY_HOST_WOULD_FAIL,
    DownloadFailed,
    DownloadFailure,
)

pytestmark = pytest.mark.unit

# The strings hosts and registration put on the bus and in attempts; renaming one would
# change what an older message or a stored attempt means.
ON_THE_WIRE = {
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "CONNECTION",
    "HTTP_SERVER",
    "HTTP_CLIENT",
    "TLS",
    "UNSAFE_REDIRECT",
    "DESTINATION_DENIED",
    "NOT_FOUND",
    "NO_SPACE",
    "NO_SUCH_POOL",
    "CHECKSUM_MISMATCH",
    "SIZE_MISMATCH",
    "UNSAFE_IMAGE",
    "BAD_METALINK",
    "NFS",
    "DECOMPRESSION",
    "CANCELLED",
    "INTERNAL",
    "HOST_DOWN",
    "DIGEST_MISMATCH",
}


def test_every_code_has_exactly_one_meaning() -> None:
    assert set(DownloadFailure) == ANOTHER_HOST_MAY_SUCCEED | EVERY_HOST_WOULD_FAIL
    assert not ANOTHER_HOST_MAY_SUCCEED & EVERY_HOST_WOULD_FAIL


def test_the_property_and_the_sets_agree() -> None:
    for code in DownloadFailure:
        assert code.another_host_may_succeed is (code in ANOTHER_HOST_MAY_SUCCEED), code


@pytest.mark.parametrize(
    "code",
    [
        *("CONNECT_TIMEOUT", "READ_TIMEOUT", "CONNECTION", "HTTP_SERVER", "HOST_DOWN"),
        *("TLS", "NO_SUCH_POOL", "NO_SPACE", "DIGEST_MISMATCH"),
    ],
)
def test_network_trust_and_the_hosts_own_failures_are_worth_another_host(code: str) -> None:
    assert DownloadFailure(code).another_host_may_succeed


@pytest.mark.parametrize(
    "code",
    ["NOT_FOUND", "HTTP_CLIENT", "CHECKSUM_MISMATCH", "UNSAFE_IMAGE", "DESTINATION_DENIED"],
)
def test_a_bad_source_or_a_refused_destination_fails_on_every_host(code: str) -> None:
    assert not DownloadFailure(code).another_host_may_succeed


def test_the_wire_values_are_the_names_hosts_already_send() -> None:
    assert {code.value for code in DownloadFailure} == ON_THE_WIRE
    assert all(code.value == code.name for code in DownloadFailure)


def test_a_failure_event_refuses_a_code_nobody_defined() -> None:
    report = {k: "x" for k in ("job_id", "deploy_id", "template_id", "host_id", "pool_id")}
    assert DownloadFailed(**report, code="TLS", message="m").code is DownloadFailure.TLS
    with pytest.raises(ValueError, match="code"):
        DownloadFailed(**report, code="CHECKSUM", message="m")
