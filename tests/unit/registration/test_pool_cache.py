"""The pools' caches: the limits each download and eviction carries, template.evict, and the
copies hosts say they removed."""

from __future__ import annotations

from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, pool, settings
from directdl.contracts import template as tpl
from directdl.contracts.errors import InvalidMessage
from directdl.contracts.host import ListHosts, StoredTemplate
from directdl.runtime.live_settings import LiveSettings
from directdl.settings_catalog import SETTINGS
from directdl_testing.messages import host_says
from registration.policy import DownloadPolicy

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32
MAX_BYTES = "directdl.pool.cache.max.bytes"
MAX_AGE = "directdl.pool.cache.max.age"


@pytest.fixture
def policy(live: LiveSettings) -> DownloadPolicy:
    """Read from the bus's own live settings, so settings.update reaches the next command."""
    return DownloadPolicy(setting=live)


def register(bus: InMemoryBus, name: str = "centos", zone_id: str = "zone-1") -> str:
    reply = bus.call(
        tpl.RegisterTemplate(
            name=name,
            url=f"https://images.example/{name}.qcow2",
            zone_id=zone_id,
            hypervisor="KVM",
            format="QCOW2",
            checksum=CHECKSUM,
        )
    )
    assert reply.ok, reply.error
    return str(reply.result["template"]["id"])


def copy(template_id: str, pool_id: str) -> StoredTemplate:
    return StoredTemplate(
        template_id=template_id,
        pool_id=pool_id,
        path=f"/{pool_id}/{template_id}",
        size=4096,
        digest=CHECKSUM,
    )


def beat(bus: InMemoryBus, host_id: str, zone: str = "zone-1", **kw: Any) -> None:
    """What an agent sends as it starts: its inventory, then its first heartbeat."""
    bus.submit_many(host_says(host_id, zone_id=zone, **kw))


def evictions(bus: InMemoryBus) -> dict[str, dict[str, Any]]:
    """The EvictTemplates each host was sent, by host."""
    return {key.split(".")[1]: body for key, body in bus.events if key.endswith(".template.evict")}


def held(bus: InMemoryBus, host_id: str) -> list[tuple[str, str]]:
    [item] = [h for h in bus.call(ListHosts()).result["items"] if h["host_id"] == host_id]
    return sorted((t["template_id"], t["pool_id"]) for t in item["templates"])


def set_setting(bus: InMemoryBus, name: str, value: int | str) -> None:
    reply = bus.call(settings.UpdateSetting(name=name, value=value))
    assert reply.ok, reply.error


# The settings


def test_the_cache_settings_are_registrations_and_default_to_no_limit() -> None:
    for name in (MAX_BYTES, MAX_AGE):
        assert (SETTINGS[name].owner, SETTINGS[name].kind, SETTINGS[name].default) == (
            "registration",
            int,
            0,
        )
    assert SETTINGS[MAX_BYTES].parse(2**63 - 1) == 2**63 - 1
    assert SETTINGS[MAX_AGE].parse(10 * 366 * 24 * 3600) == 10 * 366 * 24 * 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [(MAX_BYTES, -1), (MAX_BYTES, 2**63), (MAX_AGE, -1), (MAX_AGE, 10 * 366 * 24 * 3600 + 1)],
)
def test_a_cache_setting_out_of_range_is_refused_naming_the_value(name: str, value: int) -> None:
    with pytest.raises(InvalidMessage) as refused:
        SETTINGS[name].parse(value)
    assert str(value) in refused.value.message and name in refused.value.message


def test_a_byte_count_given_as_text_is_read_exactly() -> None:
    # Through a float, this one would be read as 2**63 and refused, and 2**60+1 as 2**60.
    assert SETTINGS[MAX_BYTES].parse(str(2**63 - 1)) == 2**63 - 1
    assert SETTINGS[MAX_BYTES].parse(str(2**60 + 1)) == 2**60 + 1
    assert SETTINGS[MAX_BYTES].parse("1e9") == 10**9
    assert SETTINGS["direct.download.connect.timeout"].parse("2.0") == 2


def test_every_download_carries_the_cache_limits_in_force(bus: InMemoryBus) -> None:
    template_id = register(bus)
    beat(bus, "h1")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    set_setting(bus, MAX_BYTES, 50 << 30)
    set_setting(bus, MAX_AGE, "86400")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))

    first, second = bus.published("host.h1.template.download")
    assert first["cache"] == {"max_bytes": 0, "max_age_s": 0}
    assert second["cache"] == {"max_bytes": 50 << 30, "max_age_s": 86400}


# template.evict


@pytest.fixture
def cloud(bus: InMemoryBus) -> str:
    """h1 and h2 in zone-1, where the template is registered; h1 holds it, and so does h3,
    of zone-2, where it is not (on two pools); h2 holds another template."""
    template_id = register(bus)
    other = register(bus, "debian")
    beat(bus, "h1", templates=[copy(template_id, "pool-h1")])
    beat(bus, "h2", templates=[copy(other, "pool-h2")])
    beat(bus, "h3", zone="zone-2", templates=[copy(template_id, "a"), copy(template_id, "b")])
    return template_id


def test_evicting_a_template_asks_the_hosts_of_its_zones_and_those_that_hold_it(
    bus: InMemoryBus, cloud: str
) -> None:
    set_setting(bus, MAX_BYTES, 10**12)
    reply = bus.call(pool.EvictTemplate(template_id=cloud))

    assert reply.ok, reply.error
    assert reply.result == {"hosts": ["h1", "h2", "h3"], "copies": 3}
    sent = evictions(bus)
    assert sorted(sent) == ["h1", "h2", "h3"]
    assert sent["h1"] == {
        "template_ids": [cloud],
        "reason": "REQUESTED",
        "policy": {"max_bytes": 10**12, "max_age_s": 0},
    }


def test_evicting_from_a_host_asks_it_alone_for_every_copy(bus: InMemoryBus, cloud: str) -> None:
    reply = bus.call(pool.EvictTemplate(host_id="h3"))
    assert reply.ok and reply.result == {"hosts": ["h3"], "copies": 2}
    sent = evictions(bus)
    assert list(sent) == ["h3"] and sent["h3"]["template_ids"] is None, "None: every copy"


def test_evicting_from_a_zone_asks_each_of_its_hosts(bus: InMemoryBus, cloud: str) -> None:
    whole = bus.call(pool.EvictTemplate(zone_id="zone-1"))
    assert whole.ok and whole.result == {"hosts": ["h1", "h2"], "copies": 2}
    assert sorted(evictions(bus)) == ["h1", "h2"]


def test_an_eviction_naming_nothing_is_refused_naming_the_cli_flags() -> None:
    with pytest.raises(ValueError, match=r"\(CLI: --template, --host or --zone\)"):
        pool.EvictTemplate()


def test_a_template_and_a_zone_narrow_each_other(bus: InMemoryBus, cloud: str) -> None:
    reply = bus.call(pool.EvictTemplate(template_id=cloud, zone_id="zone-2"))
    assert reply.ok and reply.result == {"hosts": ["h3"], "copies": 2}
    assert evictions(bus)["h3"]["template_ids"] == [cloud]
    named = bus.call(pool.EvictTemplate(template_id=cloud, host_id="h2", zone_id="zone-1"))
    assert named.ok and named.result == {"hosts": ["h2"], "copies": 0}


def test_a_deleted_template_is_evicted_from_the_hosts_that_hold_it(
    bus: InMemoryBus, cloud: str
) -> None:
    assert bus.call(tpl.DeleteTemplate(id=cloud)).ok
    reply = bus.call(pool.EvictTemplate(template_id=cloud))
    assert reply.ok and reply.result == {"hosts": ["h1", "h3"], "copies": 3}
    assert sorted(evictions(bus)) == ["h1", "h3"]


@pytest.mark.parametrize(
    ("command", "field", "value"),
    [
        (pool.EvictTemplate(host_id="h9"), "host_id", "h9"),
        (pool.EvictTemplate(host_id="h3", zone_id="zone-1"), "host_id", "h3"),
        (pool.EvictTemplate(zone_id="zone-9"), "zone_id", "zone-9"),
        (pool.EvictTemplate(template_id="t-9"), "template_id", "t-9"),
    ],
    ids=["unknown host", "host of another zone", "unknown zone", "unknown template"],
)
def test_an_eviction_naming_nothing_known_is_not_found(
    bus: InMemoryBus, cloud: str, command: pool.EvictTemplate, field: str, value: str
) -> None:
    reply = bus.call(command)
    assert reply.error is not None and reply.error.code == "NOT_FOUND"
    assert repr(value) in reply.error.message
    assert reply.error.details == {"field": field, "value": value}
    assert evictions(bus) == {}


def test_an_eviction_naming_nothing_is_refused(bus: InMemoryBus) -> None:
    reply = bus.call_raw("template.evict", b"{}")
    assert reply.error is not None and reply.error.code == "INVALID_MESSAGE"
    assert evictions(bus) == {}


# template.copies.removed


def removed(host_id: str, pool_id: str, *template_ids: str) -> pool.CopiesRemoved:
    return pool.CopiesRemoved(
        host_id=host_id,
        pool_id=pool_id,
        removed=[
            pool.RemovedCopy(
                template_id=t,
                path=f"/{pool_id}/{t}",
                size=4096,
                reason=pool.RemovalReason.REQUESTED,
            )
            for t in template_ids
        ],
        freed_bytes=4096 * len(template_ids),
    )


def test_removed_copies_leave_the_hosts_inventory_those_on_other_pools_stay(
    bus: InMemoryBus, cloud: str
) -> None:
    bus.submit(removed("h3", "a", cloud))
    assert held(bus, "h3") == [(cloud, "b")]
    bus.submit(removed("h3", "b", cloud, "never-held"))
    assert held(bus, "h3") == []
    assert bus.call(pool.EvictTemplate(host_id="h3")).result["copies"] == 0


def test_a_host_that_removed_its_copy_is_no_longer_preferred_for_it(bus: InMemoryBus) -> None:
    template_id = register(bus)
    roomy = [{"pool_id": "pool-h2", "capacity_bytes": 10**12, "free_bytes": 10**12}]
    beat(bus, "h1", templates=[copy(template_id, "pool-h1")])
    beat(bus, "h2", pools=roomy)
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    bus.submit(removed("h1", "pool-h1", template_id))
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))

    chosen = [k for k, _ in bus.events if k.endswith(".template.download")]
    assert chosen == ["host.h1.template.download", "host.h2.template.download"]


def test_removals_from_an_unknown_host_or_another_host_change_nothing(
    bus: InMemoryBus, cloud: str
) -> None:
    bus.submit(removed("h9", "pool-h9", cloud))
    assert [h["host_id"] for h in bus.call(ListHosts()).result["items"]] == ["h1", "h2", "h3"]
    bus.submit(removed("h1", "pool-h1", cloud), user_id="host-agent-h2")
    assert held(bus, "h1") == [(cloud, "pool-h1")]
