"""The CloudStack response objects built from directdl's views, as the reference shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.cloudstack.responses import listing
from api.cloudstack.views import (
    certificate_entry_response,
    certificate_response,
    checksum_value,
    configuration_response,
    cs_date,
    host_response,
    host_status_response,
    is_hidden,
    java_date,
    java_dn,
    pools_holding,
    serial_decimal,
    setting_text,
    setting_type,
    storage_pool_response,
    template_response,
    template_responses,
    zone_response,
)
from certificate.domain.certificate import ParsedCertificate
from directdl.contracts.certificate import (
    CertificateEntry,
    CertificateView,
    HostCertState,
    HostOutcome,
)
from directdl.contracts.host import HostState, HostView, PoolStatus, StoredTemplate
from directdl.contracts.settings import SettingView
from directdl.contracts.template import (
    SourceProtocol,
    TemplateFormat,
    TemplateType,
    TemplateView,
)
from directdl.settings_catalog import SETTINGS

pytestmark = pytest.mark.unit

TEMPLATE_ID = "9e1c3a4e-3d0b-4f8e-9f3a-6a1d2c3b4e5f"
SHA = "005a4a49d295d6c1eb778efb6b7e5e760019955296f0cc4fc92120ce6e77669e"
CREATED = datetime(2025, 1, 7, 10, 15, tzinfo=UTC)
SERIAL = 431798264851234567


def no_nulls(value: Any) -> bool:
    """Whether nothing in a JSON value is None, however deep."""
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(v is not None and no_nulls(v) for v in value)
    return value is not None


def template(**changes: Any) -> TemplateView:
    fields: dict[str, Any] = {
        "id": TEMPLATE_ID,
        "name": "sample",
        "url": "https://127.0.0.1:8443/sample.raw",
        "protocol": SourceProtocol.HTTPS,
        "zone_ids": ["zone-1"],
        "hypervisor": "KVM",
        "format": TemplateFormat.RAW,
        "checksum": "{SHA-256}" + SHA,
        "template_type": TemplateType.USER,
        "direct_download": True,
        "details": {"HTTP_HEADER:Authorization": "***", "HTTP_HEADER:X-Tenant": "blue"},
        "size": 1048576,
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(hours=1),
    }
    fields.update(changes)
    return TemplateView(**fields)


def host(
    host_id: str,
    zone_id: str = "zone-1",
    held: tuple[tuple[str, str], ...] = (),
    state: HostState = HostState.UP,
) -> HostView:
    """A host holding (template id, pool id) pairs."""
    pools = {pool for _, pool in held} or {"pool-1"}
    return HostView(
        host_id=host_id,
        zone_id=zone_id,
        cluster_id="cluster-1",
        state=state,
        last_seen=CREATED,
        pools=[
            PoolStatus(pool_id=p, capacity_bytes=10 << 30, free_bytes=4 << 30)
            for p in sorted(pools)
        ],
        templates=[
            StoredTemplate(
                template_id=t,
                pool_id=p,
                path=f"/var/lib/libvirt/images/{t}",
                size=1048576,
                digest="{SHA-256}" + SHA,
            )
            for t, p in held
        ],
    )


# --- dates ---------------------------------------------------------------------------------


def test_cs_date_is_cloudstacks_format_in_utc() -> None:
    assert cs_date(CREATED) == "2025-01-07T10:15:00+0000"
    assert cs_date(datetime(2025, 1, 7, 12, 15, 30, 999, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-01-07T10:15:30+0000"
    )
    # directdl's naive datetimes are UTC already.
    assert cs_date(datetime(2025, 1, 7, 10, 15)) == "2025-01-07T10:15:00+0000"


def test_java_date_is_date_to_string_in_a_utc_jvm() -> None:
    assert java_date(datetime(2024, 1, 1, tzinfo=UTC)) == "Mon Jan 01 00:00:00 UTC 2024"
    assert java_date(datetime(2026, 1, 1, tzinfo=UTC)) == "Thu Jan 01 00:00:00 UTC 2026"
    east = timezone(timedelta(hours=5, minutes=30))
    assert java_date(datetime(2025, 3, 9, 3, 4, 5, tzinfo=east)) == "Sat Mar 08 21:34:05 UTC 2025"


# --- templates -----------------------------------------------------------------------------


def test_template_response_is_the_reference_example() -> None:
    assert template_response(template(), "zone-1") == {
        "id": TEMPLATE_ID,
        "name": "sample",
        "displaytext": "sample",
        "ispublic": True,
        "isready": True,
        "isfeatured": False,
        "crossZones": False,
        "passwordenabled": False,
        "isextractable": False,
        "sshkeyenabled": False,
        "isdynamicallyscalable": False,
        "requireshvm": False,
        "bits": 64,
        "deployasis": False,
        "format": "RAW",
        "hypervisor": "KVM",
        "templatetype": "USER",
        "directdownload": True,
        "status": "Bypassed Secondary Storage",
        "url": "https://127.0.0.1:8443/sample.raw",
        "checksum": SHA,
        "size": 1048576,
        "created": "2025-01-07T10:15:00+0000",
        "zoneid": "zone-1",
        "zonename": "zone-1",
        "account": "admin",
        "domain": "ROOT",
        "domainpath": "/",
        "details": {"HTTP_HEADER:Authorization": "***", "HTTP_HEADER:X-Tenant": "blue"},
        "downloaddetails": [],
        "tags": [],
        "hasannotations": False,
    }


def test_template_response_lists_each_pool_holding_it_once() -> None:
    response = template_response(template(), "zone-1", ["pool-1", "pool-2", "pool-1"])
    assert response["downloaddetails"] == [
        {
            "datastore": pool,
            "datastoreId": pool,
            "datastoreRole": "Primary",
            "downloadPercent": "100",
            "downloadState": "DOWNLOADED",
        }
        for pool in ("pool-1", "pool-2")
    ]


@pytest.mark.parametrize("size", [None, 0])
def test_template_response_leaves_out_what_is_not_known(size: int | None) -> None:
    response = template_response(template(size=size, checksum=None, details={}), "zone-1")
    assert "size" not in response
    assert "checksum" not in response
    assert response["details"] == {}
    assert no_nulls(response)
    json.dumps(response)


def test_checksum_loses_only_its_algorithm_prefix() -> None:
    assert checksum_value("{SHA-256}" + SHA) == SHA
    assert checksum_value("{MD5}d41d8cd98f00b204e9800998ecf8427e") == (
        "d41d8cd98f00b204e9800998ecf8427e"
    )
    # CloudStack takes bare hex for MD5, and shows it so.
    assert checksum_value("d41d8cd98f00b204e9800998ecf8427e") == "d41d8cd98f00b204e9800998ecf8427e"
    assert template_response(template(checksum="{MD5}ab"), "z")["checksum"] == "ab"


def test_template_type_and_format_are_the_enum_names() -> None:
    response = template_response(
        template(template_type=TemplateType.ROUTING, format=TemplateFormat.QCOW2), "zone-1"
    )
    assert (response["templatetype"], response["format"]) == ("ROUTING", "QCOW2")


def test_template_responses_one_per_zone_with_that_zones_pools() -> None:
    hosts = [
        host("host-1", "zone-1", ((TEMPLATE_ID, "pool-1"), ("other", "pool-9"))),
        host("host-2", "zone-1", ((TEMPLATE_ID, "pool-1"),)),  # a shared pool, seen twice
        host("host-3", "zone-2", ((TEMPLATE_ID, "pool-3"),)),
        host("host-4", "zone-3", ((TEMPLATE_ID, "pool-4"),)),  # not one of its zones
    ]
    view = template(zone_ids=["zone-1", "zone-2"])
    responses = template_responses(view, hosts)
    assert [r["zoneid"] for r in responses] == ["zone-1", "zone-2"]
    assert [[d["datastoreId"] for d in r["downloaddetails"]] for r in responses] == [
        ["pool-1"],
        ["pool-3"],
    ]
    assert pools_holding(TEMPLATE_ID, "zone-1", hosts) == ["pool-1"]
    assert pools_holding("unknown", "zone-1", hosts) == []


# --- certificates --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored() -> ParsedCertificate:
    """A real CA certificate, read as the certificate service reads one before storing it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "sample-ca"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(SERIAL)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2026, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return ParsedCertificate(cert)


@pytest.fixture
def cert_view(stored: ParsedCertificate) -> CertificateView:
    return CertificateView(
        id="c0a8e1f2-5b6c-4d7e-8f90-a1b2c3d4e5f6",
        alias="sample-ca",
        zone_id="zone-1",
        hypervisor="KVM",
        subject=stored.subject,
        issuer=stored.issuer,
        serial=stored.serial,
        not_before=stored.not_before,
        not_after=stored.not_after,
        fingerprint_sha256=stored.fingerprint_sha256,
        revoked=False,
        created_at=CREATED,
    )


def test_the_stored_forms_are_what_the_view_converts(stored: ParsedCertificate) -> None:
    # If the certificate service changes how it stores these, the conversions below must too.
    assert stored.serial == f"{SERIAL:X}"
    assert stored.subject == "CN=sample-ca,O=Example,C=US"


def test_certificate_response_is_the_reference_example(
    cert_view: CertificateView, stored: ParsedCertificate
) -> None:
    hosts = [
        HostOutcome(host_id="host-1", state=HostCertState.UPLOADED, updated_at=CREATED),
        HostOutcome(
            host_id="host-2",
            state=HostCertState.FAILED,
            reason="Certificate sample-ca could not be added to host host-2 due to: timeout",
        ),
    ]
    assert certificate_response(cert_view, hosts) == {
        "id": "c0a8e1f2-5b6c-4d7e-8f90-a1b2c3d4e5f6",
        "alias": "sample-ca",
        "zoneid": "zone-1",
        "zonename": "zone-1",
        "version": "3",
        "subject": "CN=sample-ca, O=Example, C=US",
        "issuer": "CN=sample-ca, O=Example, C=US",
        "serialnum": "431798264851234567",
        "validity": "From: [Mon Jan 01 00:00:00 UTC 2024] - To: [Thu Jan 01 00:00:00 UTC 2026]",
        "hypervisor": "KVM",
        "revoked": False,
        "fingerprint_sha256": stored.fingerprint_sha256,
        "hostsmap": [
            {"hostid": "host-1", "hostname": "host-1", "status": "UPLOADED", "details": ""},
            {
                "hostid": "host-2",
                "hostname": "host-2",
                "status": "FAILED",
                "details": "Certificate sample-ca could not be added to host host-2 due to: "
                "timeout",
            },
        ],
    }


def test_hostsmap_only_when_hosts_are_given(cert_view: CertificateView) -> None:
    assert "hostsmap" not in certificate_response(cert_view, None)
    assert certificate_response(cert_view, [])["hostsmap"] == []
    revoked = cert_view.model_copy(update={"revoked": True})
    entry = CertificateEntry(
        certificate=revoked, hosts=[HostOutcome(host_id="h", state=HostCertState.REVOKED)]
    )
    listed = certificate_entry_response(entry)
    assert listed["revoked"] is True
    assert listed["hostsmap"] == [
        {"hostid": "h", "hostname": "h", "status": "REVOKED", "details": ""}
    ]
    assert "hostsmap" not in certificate_entry_response(CertificateEntry(certificate=revoked))


def test_serial_is_decimal_as_big_integer_prints_it() -> None:
    assert serial_decimal(f"{SERIAL:X}") == "431798264851234567"
    assert serial_decimal("05:FE:0A") == str(0x05FE0A)
    assert serial_decimal("-1A") == "-26"  # BigInteger keeps the sign of a malformed serial
    assert serial_decimal("not hex") == "not hex"


@pytest.mark.parametrize(
    ("stored_dn", "java"),
    [
        ("CN=sample-ca,O=Example,C=US", "CN=sample-ca, O=Example, C=US"),
        (
            "CN=a\\, b,ST=Bay,1.2.840.113549.1.9.1=ca@example.com,C=US",
            'CN="a, b", ST=Bay, EMAILADDRESS=ca@example.com, C=US',
        ),
        ("CN=x  y,DC=example,DC=com", 'CN="x  y", DC=example, DC=com'),
        ("CN=\\ lead", 'CN=" lead"'),
        ("O=Example+OU=Ops,C=US", "O=Example + OU=Ops, C=US"),
        ('CN=q\\"t', 'CN="q\\"t"'),
        ("", ""),
        ("not a name", "not a name"),
    ],
)
def test_distinguished_names_as_java_prints_them(stored_dn: str, java: str) -> None:
    assert java_dn(stored_dn) == java


def test_host_status_has_details_only_with_a_reason() -> None:
    assert host_status_response(HostOutcome(host_id="host-1", state=HostCertState.REVOKED)) == {
        "hostid": "host-1",
        "hostname": "host-1",
        "status": "REVOKED",
    }
    skipped = HostOutcome(
        host_id="host-9", state=HostCertState.SKIPPED, reason="Host is not in the zone zone-1"
    )
    assert host_status_response(skipped) == {
        "hostid": "host-9",
        "hostname": "host-9",
        "status": "SKIPPED",
        "details": "Host is not in the zone zone-1",
    }


# --- settings ------------------------------------------------------------------------------


def setting(name: str, value: int | float | str | None = None) -> SettingView:
    known = SETTINGS[name]
    return known.view(known.default if value is None else value)


def test_configuration_response_is_the_reference_example() -> None:
    view = setting("direct.download.socket.timeout", 10000)
    assert configuration_response(view) == {
        "category": "Advanced",
        "name": "direct.download.socket.timeout",
        "value": "10000",
        "defaultvalue": "5000",
        "description": view.description,
        "component": "DirectDownloadManager",
        "isdynamic": True,
        "type": "Number",
        "displaytext": "Direct download socket timeout (ms)",
    }
    assert not is_hidden(view)


def test_the_hidden_setting_is_in_the_hidden_category() -> None:
    view = setting("direct.download.connection.request.timeout")
    assert is_hidden(view)
    assert configuration_response(view)["category"] == "Hidden"


def test_fractional_settings_are_decimals() -> None:
    view = setting("direct.download.certificate.background.task.interval", 0.5)
    response = configuration_response(view)
    shown = (response["value"], response["defaultvalue"], response["type"])
    assert shown == ("0.5", "0", "Decimal")
    # CloudStack schedules this one at start-up only; directdl applies it live.
    assert response["isdynamic"] is True
    assert response["component"] == "DirectDownloadManager"
    # The catalog reads an admin's "30" as 30.0 for a fractional setting.
    assert configuration_response(setting("directdl.certificate.host.timeout", 30.0))["value"] == (
        "30"
    )


def test_directdl_settings_keep_their_owner_as_component() -> None:
    response = configuration_response(setting("directdl.download.denied.networks"))
    assert response["component"] == "registration"
    assert response["type"] == "String"
    assert response["value"] == response["defaultvalue"]
    assert isinstance(response["value"], str)
    assert response["displaytext"] == "Directdl download denied networks (CIDRs)"


def test_every_catalog_setting_maps_to_strings() -> None:
    for known in SETTINGS.values():
        response = configuration_response(known.view(known.default))
        assert isinstance(response["value"], str)
        assert isinstance(response["defaultvalue"], str)
        assert response["type"] in ("Number", "Decimal", "String")
        assert response["category"] == ("Hidden" if known.hidden else "Advanced")
        assert not response["value"].endswith(".0")


def test_a_setting_the_catalog_does_not_know_is_typed_by_its_values() -> None:
    def view(value: int | float | str, default: int | float | str) -> SettingView:
        return SettingView(
            name="directdl.future.knob",
            value=value,
            default=default,
            unit="things",
            owner="sync-scheduler",
            hidden=False,
            description="A setting newer than this gateway.",
        )

    assert setting_type(view(3, 1)) == "Number"
    assert setting_type(view(2.5, 1)) == "Decimal"
    assert setting_type(view(2.0, 1)) == "Number"
    assert setting_type(view("a", "b")) == "String"
    assert configuration_response(view(3, 1))["component"] == "sync-scheduler"


def test_setting_text() -> None:
    assert setting_text(5000) == "5000"
    assert setting_text(0.25) == "0.25"
    assert setting_text(2.0) == "2"
    assert setting_text(True) == "true"
    assert setting_text(False) == "false"
    assert setting_text("10.0.0.0/8") == "10.0.0.0/8"


# --- hosts, zones, lists -------------------------------------------------------------------


def test_host_response_is_the_reference_example() -> None:
    assert host_response(host("host-1", held=((TEMPLATE_ID, "pool-1"),))) == {
        "id": "host-1",
        "name": "host-1",
        "state": "Up",
        "type": "Routing",
        "hypervisor": "KVM",
        "zoneid": "zone-1",
        "zonename": "zone-1",
        "clusterid": "cluster-1",
        "clustername": "cluster-1",
        "clustertype": "CloudManaged",
        "resourcestate": "Enabled",
        "lastpinged": "2025-01-07T10:15:00+0000",
        "islocalstorageactive": False,
        "hahost": False,
        "hasannotations": False,
    }


def test_a_down_host_is_down() -> None:
    response = host_response(host("host-2", state=HostState.DOWN))
    assert response["state"] == "Down"
    assert no_nulls(response)


@pytest.mark.parametrize(("enabled", "state"), [(True, "Enabled"), (False, "Disabled")])
def test_zone_response(enabled: bool, state: str) -> None:
    assert zone_response("zone-1", enabled) == {
        "id": "zone-1",
        "name": "zone-1",
        "allocationstate": state,
        "networktype": "Advanced",
        "securitygroupsenabled": False,
        "localstorageenabled": False,
        "type": "Core",
        "dhcpprovider": "VirtualRouter",
        "tags": [],
        "hasannotations": False,
    }


def test_list_response_shapes() -> None:
    zones = [zone_response("zone-1", True)]
    assert listing("zone", zones) == {"count": 1, "zone": zones}
    # count is the total, not the page's size.
    assert listing("zone", zones, count=7) == {"count": 7, "zone": zones}


def test_an_empty_list_is_an_empty_object() -> None:
    # Past the last page too: cs's fetch_list stops on {} and takes the one non-count key.
    assert listing("template", []) == {}
    assert listing("template", [], count=3) == {}


def test_a_whole_answer_serialises_without_nulls(cert_view: CertificateView) -> None:
    answer = {
        "listtemplatedirectdownloadcertificatesresponse": listing(
            "directdownloadcertificate", [certificate_response(cert_view, None)]
        )
    }
    text = json.dumps(answer)
    assert "null" not in text
    assert json.loads(text) == answer


def test_a_storage_pool_is_the_hosts_local_pool_up_while_the_host_is() -> None:
    up, down = host("host-1"), host("host-2", state=HostState.DOWN)
    pool = storage_pool_response(up, up.pools[0])
    assert (pool["id"], pool["hostid"], pool["scope"], pool["state"]) == (
        "pool-1",
        "host-1",
        "HOST",
        "Up",
    )
    assert (pool["disksizetotal"], pool["disksizeused"]) == (10 << 30, 6 << 30)
    assert storage_pool_response(down, down.pools[0])["state"] == "Disabled"
