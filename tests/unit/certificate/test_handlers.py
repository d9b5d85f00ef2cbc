"""Certificate handlers through the in-memory bus: fan-out, real outcomes, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from certificate.bootstrap import EXPIRY_WARNING_DAYS
from directdl.bus.memory import InMemoryBus
from directdl.contracts import certificate as msg
from directdl.contracts.host import TrustedCertificate
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.certs import make_self_signed
from directdl_testing.messages import host_says

from .conftest import Clock, Tick

pytestmark = pytest.mark.unit

PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()
OTHER = make_self_signed("other.example", ["DNS:other.example"])[0].decode()


def beat(bus: InMemoryBus, host_id: str, zone: str = "zone-1", **kw: Any) -> None:
    """The host's inventory, then its heartbeat, as its agent sends them."""
    bus.submit_many(host_says(host_id, zone_id=zone, **kw))


def sent(bus: InMemoryBus, action: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (key.split(".")[1], body) for key, body in bus.events if key.endswith(f".cert.{action}")
    ]


def answer(
    bus: InMemoryBus,
    host_id: str,
    body: dict[str, Any],
    action: str = "install",
    fail: str | None = None,
) -> None:
    report = {
        "operation_id": body["operation_id"],
        "certificate_id": body["certificate_id"],
        "host_id": host_id,
        "alias": body["alias"],
    }
    if fail is not None:
        bus.submit(msg.CertificateFailed(**report, reason=fail))
    elif action == "install":
        bus.submit(msg.CertificateInstalled(**report, fingerprint_sha256="AB", outcome="installed"))
    else:
        bus.submit(msg.CertificateRemoved(**report, outcome="removed"))


def upload(bus: InMemoryBus, **kw: Any) -> str:
    fields = {"name": "repo", "zone_id": "zone-1", "hypervisor": "KVM", "certificate": PEM} | kw
    return bus.submit(msg.UploadCertificate(**fields))


def test_upload_goes_to_every_up_host_and_replies_with_what_each_did(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    beat(bus, "h3", state="Down")
    correlation = upload(bus, name="Repo")
    installs = sent(bus, "install")
    assert sorted(h for h, _ in installs) == ["h1", "h2"]
    assert installs[0][1]["alias"] == "repo"
    assert bus.reply_for(correlation) is None, "the reply waits for the hosts"

    answer(bus, "h1", installs[0][1] if installs[0][0] == "h1" else installs[1][1])
    other = next(b for h, b in installs if h == "h2")
    answer(bus, "h2", other, fail="keytool said no")

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok and reply.result is not None
    assert [(h["host_id"], h["state"], h.get("reason")) for h in reply.result["hosts"]] == [
        ("h1", "UPLOADED", None),
        ("h2", "FAILED", "keytool said no"),
    ]
    cert = reply.result["certificate"]
    assert cert["alias"] == "repo" and cert["subject"] == "CN=repo.example"
    assert len(cert["fingerprint_sha256"].split(":")) == 32
    [event] = bus.published("cert.uploaded")
    assert event["certificate"]["id"] == cert["id"]


def test_a_host_that_does_not_answer_in_time_is_failed_not_uploaded(
    bus: InMemoryBus, clock: Clock, tick: Tick
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = upload(bus)
    [(_, body), _] = sent(bus, "install")
    answer(bus, "h1", body)
    tick("late-answers")
    assert bus.reply_for(correlation) is None, "not late yet"

    clock.advance(seconds=31)
    tick("late-answers")

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    assert [(h["host_id"], h["state"], h["reason"]) for h in reply.result["hosts"]] == [
        ("h1", "UPLOADED", None),
        ("h2", "FAILED", "no answer within 30 s"),
    ]
    assert bus.published("cert.host.failed") == [], "only a host may say it failed"
    [event] = bus.published("cert.uploaded")
    assert [h["state"] for h in event["hosts"]] == ["UPLOADED", "FAILED"]


def test_an_answer_after_the_timeout_is_recorded_but_not_answered_again(
    bus: InMemoryBus, clock: Clock, tick: Tick
) -> None:
    beat(bus, "h1")
    correlation = upload(bus)
    [(_, body)] = sent(bus, "install")
    clock.advance(seconds=31)
    tick("late-answers")
    assert bus.reply_for(correlation) is not None

    answer(bus, "h1", body)

    assert bus.reply_for(correlation) is None
    assert len(bus.published("cert.uploaded")) == 1
    listed = bus.call(msg.ListCertificates(list_hosts=True)).result
    assert listed is not None
    assert [(h["host_id"], h["state"]) for h in listed["items"][0]["hosts"]] == [("h1", "UPLOADED")]


def test_only_the_hosts_asked_settle_an_operation(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = upload(bus, host_id="h1")
    [(_, body)] = sent(bus, "install")

    answer(bus, "h2", body)
    assert bus.reply_for(correlation) is None, "h2 was not asked"
    answer(bus, "h1", body)

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    assert [h["host_id"] for h in reply.result["hosts"]] == ["h1"]
    [event] = bus.published("cert.uploaded")
    assert event["host_id"] == "h1"


def test_an_upload_to_a_zone_without_up_hosts_is_answered_at_once(bus: InMemoryBus) -> None:
    beat(bus, "h1", state="Down")
    reply = bus.call(
        msg.UploadCertificate(name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM)
    )
    assert reply.ok and reply.result is not None and reply.result["hosts"] == []
    assert bus.published("cert.uploaded")


def test_the_same_certificate_again_is_idempotent_but_another_under_the_alias_conflicts(
    bus: InMemoryBus,
) -> None:
    beat(bus, "h1")
    upload(bus)
    again = upload(bus)
    clash = bus.call(
        msg.UploadCertificate(name="repo", zone_id="zone-1", hypervisor="KVM", certificate=OTHER)
    )

    assert bus.reply_for(again) is None  # accepted, and sent to the host again
    assert (
        clash.error is not None
        and clash.error.code == "CONFLICT"
        and "'repo'" in clash.error.message
        and "choose another name (CLI: --name)" in clash.error.message
    )
    listed = bus.call(msg.ListCertificates(zone_id="zone-1")).result
    assert listed is not None and len(listed["items"]) == 1


@pytest.mark.parametrize(
    ("fields", "code", "named"),
    [
        ({"hypervisor": "VMware"}, "UNSUPPORTED", "VMware"),
        ({"zone_id": "zone-9"}, "NOT_FOUND", "zone-9"),
        ({"host_id": "h9"}, "NOT_FOUND", "h9"),
        ({"name": "cloud"}, "INVALID_MESSAGE", "cloud"),
        ({"name": "-bad"}, "INVALID_MESSAGE", "-bad"),
        ({"certificate": "garbage"}, "INVALID_MESSAGE", "certificate"),
    ],
)
def test_bad_uploads_get_their_code_and_store_nothing(
    bus: InMemoryBus, fields: dict[str, str], code: str, named: str
) -> None:
    beat(bus, "h1")
    reply = bus.call(
        msg.UploadCertificate(
            **(
                {"name": "repo", "zone_id": "zone-1", "hypervisor": "KVM", "certificate": PEM}
                | fields
            )
        )
    )
    assert reply.error is not None and reply.error.code == code, reply.error
    assert named in reply.error.message
    assert bus.call(msg.ListCertificates()).result == {"items": []}
    assert sent(bus, "install") == []


def test_revoke_removes_where_held_skips_the_rest_and_is_never_pushed_again(
    bus: InMemoryBus,
) -> None:
    beat(bus, "h1")
    upload(bus)
    [(_, body)] = sent(bus, "install")
    answer(bus, "h1", body)
    beat(bus, "h2")  # joined later, never had it

    correlation = bus.submit(msg.RevokeCertificate(name="repo", hypervisor="KVM", zone_id="zone-1"))
    [(host, removal)] = sent(bus, "remove")
    answer(bus, host, removal, action="remove")

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    assert [(h["host_id"], h["state"]) for h in reply.result["hosts"]] == [
        ("h1", "REVOKED"),
        ("h2", "SKIPPED"),
    ]
    assert reply.result["certificate"]["revoked"] is True
    refused = bus.call(msg.ProvisionCertificate(id=body["certificate_id"], host_id="h2"))
    assert refused.error is not None and refused.error.code == "CONFLICT"


def test_a_host_whose_inventory_shows_the_alias_is_asked_to_remove_it(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    upload(bus)
    [(_, body)] = sent(bus, "install")
    beat(bus, "h1", certificates=[TrustedCertificate(alias="repo", fingerprint_sha256="AB")])
    bus.submit(msg.RevokeCertificate(id=body["certificate_id"], zone_id="zone-1"))
    assert [h for h, _ in sent(bus, "remove")] == ["h1"]


def test_list_shows_each_hosts_recorded_state_and_delete_forgets(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    upload(bus)
    [(_, body)] = sent(bus, "install")
    answer(bus, "h1", body)
    listed = bus.call(msg.ListCertificates(list_hosts=True)).result
    assert listed is not None
    assert [(h["host_id"], h["state"]) for h in listed["items"][0]["hosts"]] == [("h1", "UPLOADED")]

    correlation = bus.submit(msg.DeleteCertificate(id=body["certificate_id"]))
    [(host, removal)] = sent(bus, "remove")
    answer(bus, host, removal, action="remove")
    assert bus.reply_for(correlation) is not None
    assert bus.call(msg.ListCertificates()).result == {"items": []}
    assert bus.published("cert.deleted")


def test_deleting_what_no_host_holds_is_answered_at_once(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    upload(bus)
    [(_, body)] = sent(bus, "install")
    answer(bus, "h1", body, fail="keytool said no")
    beat(bus, "h1", state="Down")

    reply = bus.call(msg.DeleteCertificate(id=body["certificate_id"]))

    assert reply.ok and reply.result is not None and reply.result["certificate"]["revoked"]
    [event] = bus.published("cert.deleted")
    assert set(event) >= {"certificate"} and "hosts" not in event
    assert bus.call(msg.ListCertificates()).result == {"items": []}


def test_a_revoked_certificate_is_refused_before_its_host_is_looked_at(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    upload(bus)
    [(_, body)] = sent(bus, "install")
    answer(bus, "h1", body)
    bus.submit(msg.RevokeCertificate(id=body["certificate_id"], zone_id="zone-1"))

    refused = bus.call(msg.ProvisionCertificate(id=body["certificate_id"], host_id="h9"))

    assert refused.error is not None and refused.error.code == "CONFLICT"


def test_a_revoke_naming_no_certificate_is_refused_naming_the_cli_flags() -> None:
    with pytest.raises(ValueError, match=r"\(CLI: --id, or --name and --hypervisor\)"):
        msg.RevokeCertificate(name="repo", zone_id="zone-1")


def test_provision_pushes_to_one_host_and_announces_nothing(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    upload(bus, host_id="h1")
    [(_, body)] = sent(bus, "install")
    correlation = bus.submit(msg.ProvisionCertificate(id=body["certificate_id"], host_id="h2"))
    [(host, push)] = [(h, b) for h, b in sent(bus, "install") if h == "h2"]
    answer(bus, host, push)

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    assert [(h["host_id"], h["state"]) for h in reply.result["hosts"]] == [("h2", "UPLOADED")]
    assert bus.published("cert.uploaded") == [], "the upload to h1 still waits; provision is quiet"


def test_unknown_certificate_is_not_found(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    for command in (
        msg.ProvisionCertificate(id="nope", host_id="h1"),
        msg.DeleteCertificate(id="nope"),
        msg.RevokeCertificate(id="nope", zone_id="zone-1"),
    ):
        reply = bus.call(command)
        assert (
            reply.error is not None
            and reply.error.code == "NOT_FOUND"
            and "nope" in reply.error.message
        )


def test_expiring_certificates_are_announced_once_a_day(
    bus: InMemoryBus, clock: Clock, tick: Tick, live: LiveSettings
) -> None:
    beat(bus, "h1")
    soon = make_self_signed("soon.example", ["DNS:soon.example"], days=10)[0].decode()
    upload(bus, name="soon", certificate=soon)
    later = make_self_signed("later.example", ["DNS:later.example"], days=400)[0].decode()
    upload(bus, name="later", certificate=later)

    tick("expiry-watch")
    tick("expiry-watch")
    [warning] = bus.published("cert.expiring")
    assert warning["certificate"]["alias"] == "soon" and warning["days_left"] in (9, 10)

    clock.advance(days=1)
    tick("expiry-watch")
    assert len(bus.published("cert.expiring")) == 2

    live.remember(EXPIRY_WARNING_DAYS, 5)
    clock.advance(days=1)
    tick("expiry-watch")
    assert len(bus.published("cert.expiring")) == 2, "more than 5 days left"
