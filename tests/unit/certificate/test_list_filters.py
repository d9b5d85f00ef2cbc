"""cert.list by alias and by id prefix, on the in-memory bus."""

from __future__ import annotations

from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import certificate as msg
from directdl.contracts.host import HostState
from directdl_testing.certs import make_self_signed
from directdl_testing.messages import heartbeat

pytestmark = pytest.mark.unit

PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()
OTHER = make_self_signed("other.example", ["DNS:other.example"])[0].decode()


def upload(bus: InMemoryBus, name: str, zone: str, pem: str = PEM) -> str:
    # The zone is known from a host, which is Down: the upload is answered at once.
    bus.submit(heartbeat(f"{zone}-host", zone_id=zone, state=HostState.DOWN))
    command = msg.UploadCertificate(name=name, zone_id=zone, hypervisor="KVM", certificate=pem)
    reply = bus.call(command)
    assert reply.ok and reply.result is not None, reply.error
    return str(reply.result["certificate"]["id"])


def ids(bus: InMemoryBus, **filters: Any) -> list[str]:
    reply = bus.call(msg.ListCertificates(**filters))
    assert reply.ok and reply.result is not None, reply.error
    return [entry["certificate"]["id"] for entry in reply.result["items"]]


def test_certificates_are_listed_by_alias_in_any_case(bus: InMemoryBus) -> None:
    one = upload(bus, "repo-ca", "zone-1")
    two = upload(bus, "repo-ca", "zone-2")
    upload(bus, "other-ca", "zone-1", OTHER)
    assert ids(bus, name="repo-ca") == [one, two]
    assert ids(bus, name="Repo-CA", zone_id="zone-2") == [two]
    assert ids(bus, name="nothing") == []


def test_certificates_are_listed_by_id_prefix_matched_literally(bus: InMemoryBus) -> None:
    one = upload(bus, "repo-ca", "zone-1")
    upload(bus, "other-ca", "zone-1", OTHER)
    assert ids(bus, id_prefix=one[:8]) == [one]
    assert ids(bus, id_prefix=one[:8], zone_id="zone-2") == []
    assert ids(bus, id_prefix="%") == []
    assert ids(bus, id_prefix="_" * 8) == []
