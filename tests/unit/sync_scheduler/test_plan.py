"""plan(): what a run asks for, from each zone's certificates and each host's own inventory."""

from __future__ import annotations

import pytest

from sync_scheduler.domain.plan import Certificate, Host, digest, plan

pytestmark = pytest.mark.unit

FP_A = "AA:" * 31 + "AA"
FP_B = "BB:" * 31 + "BB"
FP_C = "CC:" * 31 + "CC"
FP_NEW = "DD:" * 31 + "DD"


def cert(cid: str, alias: str, fp: str, zone: str = "z1", revoked: bool = False) -> Certificate:
    return Certificate(id=cid, zone_id=zone, alias=alias, fingerprint=fp, revoked=revoked)


def host(host_id: str, *entries: tuple[str, str], zone: str = "z1") -> Host:
    return Host(host_id, zone, digest(entries), lambda: entries)


ZONE = [cert("a", "alpha", FP_A), cert("b", "beta", FP_B)]


def test_a_host_exactly_in_sync_costs_nothing() -> None:
    result = plan([host("h1", ("alpha", FP_A), ("beta", FP_B))], ZONE, {"z1"})
    assert result.provision == [] and result.revoke == []
    assert result.hosts_checked == 1 and result.zones == {"z1"}


def test_a_host_in_sync_is_not_read_entry_by_entry() -> None:
    def unread() -> list[list[str]]:
        raise AssertionError("read the entries of a host whose digest matches")

    in_sync = Host("h1", "z1", digest([("alpha", FP_A), ("beta", FP_B)]), unread)
    assert plan([in_sync], ZONE, {"z1"}).hosts_checked == 1


def test_a_missing_certificate_is_provisioned() -> None:
    result = plan([host("h1", ("alpha", FP_A))], ZONE, {"z1"})
    assert result.provision == [("b", "h1")]
    assert result.revoke == []


def test_a_host_with_nothing_gets_everything() -> None:
    result = plan([host("h1")], ZONE, {"z1"})
    assert sorted(result.provision) == [("a", "h1"), ("b", "h1")]


def test_a_revoked_certificate_still_present_is_revoked() -> None:
    certificates = [*ZONE, cert("c", "gamma", FP_C, revoked=True)]
    result = plan(
        [host("h1", ("alpha", FP_A), ("beta", FP_B), ("gamma", FP_C))], certificates, {"z1"}
    )
    assert result.revoke == [("c", "z1", "h1")]
    assert result.provision == []


def test_a_revoked_certificate_already_gone_costs_nothing() -> None:
    certificates = [*ZONE, cert("c", "gamma", FP_C, revoked=True)]
    result = plan([host("h1", ("alpha", FP_A), ("beta", FP_B))], certificates, {"z1"})
    assert result.provision == [] and result.revoke == []


def test_an_alias_added_by_hand_is_left_alone() -> None:
    result = plan([host("h1", ("alpha", FP_A), ("beta", FP_B), ("local-ca", FP_C))], ZONE, {"z1"})
    assert result.provision == [] and result.revoke == []
    assert result.hosts_checked == 1


def test_a_disabled_zone_is_skipped_and_not_counted() -> None:
    hosts = [host("h1"), host("h2", zone="z2")]
    certificates = [*ZONE, cert("x", "alpha", FP_A, zone="z2")]
    result = plan(hosts, certificates, {"z1"})
    assert sorted(result.provision) == [("a", "h1"), ("b", "h1")]
    assert result.zones == {"z1"} and result.hosts_checked == 1


def test_no_enabled_zone_means_no_work() -> None:
    result = plan([host("h1")], ZONE, set())
    assert result.provision == [] and result.hosts_checked == 0 and result.zones == set()


def test_a_replaced_certificate_under_the_same_alias_is_provisioned() -> None:
    certificates = [cert("a2", "alpha", FP_NEW), cert("b", "beta", FP_B)]
    result = plan([host("h1", ("alpha", FP_A), ("beta", FP_B))], certificates, {"z1"})
    assert result.provision == [("a2", "h1")]
    assert result.revoke == []


def test_alias_and_fingerprint_case_do_not_matter() -> None:
    upper = host("h1", ("ALPHA", FP_A.lower()), ("Beta", FP_B))
    assert plan([upper], ZONE, {"z1"}).provision == []
    # also when the digest does not match and the entries are compared one by one
    extra = host("h2", ("ALPHA", FP_A.lower()), ("Beta", FP_B), ("mine", FP_C))
    assert plan([extra], ZONE, {"z1"}).provision == []
    revoked = [cert("c", "Gamma", FP_C, revoked=True)]
    assert plan([host("h3", ("gAmMa", FP_C))], revoked, {"z1"}).revoke == [("c", "z1", "h3")]


def test_digest_ignores_order_and_case() -> None:
    entries = [("alpha", FP_A), ("beta", FP_B), ("gamma", FP_C)]
    assert digest(entries) == digest(reversed(entries))
    assert digest(entries) == digest((a.upper(), f.lower()) for a, f in entries)
    assert digest(entries) != digest(entries[:2])
    assert digest([("alpha", FP_A)]) != digest([("alpha", FP_B)])


def test_hosts_get_only_their_own_zones_certificates() -> None:
    certificates = [
        cert("a", "alpha", FP_A, zone="z1"),
        cert("b", "beta", FP_B, zone="z2"),
        cert("c", "gamma", FP_C, zone="z2", revoked=True),
    ]
    hosts = [host("h1", ("gamma", FP_C), zone="z1"), host("h2", ("gamma", FP_C), zone="z2")]
    result = plan(hosts, certificates, {"z1", "z2"})
    assert sorted(result.provision) == [("a", "h1"), ("b", "h2")]
    assert result.revoke == [("c", "z2", "h2")]
    assert result.zones == {"z1", "z2"} and result.hosts_checked == 2


def test_a_zone_without_certificates_asks_nothing_of_an_empty_host() -> None:
    result = plan([host("h1", zone="z9")], ZONE, {"z9"})
    assert result.provision == [] and result.revoke == [] and result.hosts_checked == 1


def test_a_certificate_revoked_from_one_host_stays_away_from_it_alone() -> None:
    cert = Certificate("c1", "z1", "repo", "AA", revoked=False)
    kept = Host("h1", "z1", digest([("repo", "AA")]), lambda: [["repo", "AA"]])
    cleared = Host("h2", "z1", digest([]), lambda: [])
    lacking = Host("h3", "z1", digest([]), lambda: [])

    decided = plan([kept, cleared, lacking], [cert], {"z1"}, held_back={"h1": {"c1"}, "h2": {"c1"}})

    assert decided.revoke == [("c1", "z1", "h1")]  # back on it by hand: removed again
    assert decided.provision == [("c1", "h3")]  # h2 is left without it; h3 gets it
