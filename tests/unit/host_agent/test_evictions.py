"""Which copies the pool's cache lets go: too old first, then the least recently used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from directdl.contracts.pool import CachePolicy, RemovalReason
from host_agent.domain import StoredFile, evictions

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def copy(template_id: str, size: int, used_minutes_ago: float) -> StoredFile:
    return StoredFile(
        template_id,
        "pool-1",
        f"/pool/{template_id}",
        size,
        "{SHA-256}aa",
        "{SHA-256}aa",
        last_used_at=NOW - timedelta(minutes=used_minutes_ago),
    )


def chosen(
    copies: list[StoredFile], policy: CachePolicy, in_use: frozenset[str] = frozenset()
) -> list[tuple[str, RemovalReason]]:
    return [(e.copy.template_id, e.reason) for e in evictions(copies, in_use, policy, NOW)]


def test_no_limits_keep_everything() -> None:
    assert chosen([copy("a", 10, 9999), copy("b", 10, 1)], CachePolicy()) == []


def test_over_the_cap_the_least_recently_used_go_until_the_rest_fit() -> None:
    copies = [copy("new", 40, 1), copy("old", 40, 30), copy("mid", 40, 10)]
    assert chosen(copies, CachePolicy(max_bytes=80)) == [("old", RemovalReason.CAP)]
    assert chosen(copies, CachePolicy(max_bytes=40)) == [
        ("old", RemovalReason.CAP),
        ("mid", RemovalReason.CAP),
    ]


def test_a_copy_in_use_stays_even_when_it_is_the_oldest_and_the_pool_stays_over() -> None:
    copies = [copy("new", 40, 1), copy("old", 40, 30)]
    assert chosen(copies, CachePolicy(max_bytes=40), in_use=frozenset({"old"})) == [
        ("new", RemovalReason.CAP)
    ]
    assert chosen(copies, CachePolicy(max_bytes=10), in_use=frozenset({"old", "new"})) == []


def test_copies_unused_longer_than_the_age_limit_go_and_count_towards_the_cap() -> None:
    copies = [copy("stale", 40, 120), copy("fresh", 40, 1), copy("busy", 40, 500)]
    policy = CachePolicy(max_bytes=80, max_age_s=3600)
    assert chosen(copies, policy, in_use=frozenset({"busy"})) == [("stale", RemovalReason.AGE)]
