"""The CloudStack API end to end: the real `cs` 5.2.0, as a library and as its CLI, drives the
gateway in front of the services and two agents, against nginx over HTTPS."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.apikey import ApiKeyCreated, CreateApiKey
from directdl_testing import keytool
from directdl_testing.accounts import TestAccounts
from directdl_testing.nginx import Nginx
from directdl_testing.postgres import PostgresUnavailable, temporary_database
from directdl_testing.processes import ServiceProcess, free_port
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

BEAT = "0.5"
HOSTS = ("host-1", "host-2")
SECRETS_KEY = "bXvCPhpjf9OuRnI9fkrEQ9tCtumgFzF3RkmlmYcJbQA="  # a Fernet key for the test's run
CS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "cs"


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="2m") as server:
        yield server


@dataclass
class Stack:
    endpoint: str
    gateway: ServiceProcess
    gateway_env: dict[str, str]


@pytest.fixture
def stack(start_service: Callable[..., ServiceProcess]) -> Stack:
    """Every service, two agents and the gateway."""
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    start_service("certificate", env_prefix="CERTIFICATE")
    start_service("sync_scheduler", env_prefix="SYNC_SCHEDULER")
    for host_id in HOSTS:
        start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            },
        )
    port = free_port()
    env = {"API_LISTEN_PORT": str(port), "API_SECRETS_KEY": SECRETS_KEY}
    gateway = start_service("api", env_prefix="API", extra_env=env)
    return Stack(f"http://127.0.0.1:{port}/client/api", gateway, env)


@pytest.fixture
def gateway(stack: Stack) -> str:
    """The gateway's endpoint."""
    return stack.endpoint


@pytest.fixture
def keys(broker_accounts: TestAccounts, topology: Topology) -> tuple[str, str]:
    """A new API key and its secret, asked of the gateway over the bus as an operator."""
    with BusClient(broker_accounts.url("cli"), topology) as client:
        reply = client.call(CreateApiKey(name="e2e"), timeout=20)
    assert reply.ok, reply.error
    created = ApiKeyCreated.model_validate(reply.result)
    return created.key.api_key, created.secret_key


def cs_cli(endpoint: str, keys: tuple[str, str], *args: str) -> Any:
    """The `cs` command, as a user types it; its JSON output."""
    env = os.environ | {
        "CLOUDSTACK_ENDPOINT": endpoint,
        "CLOUDSTACK_KEY": keys[0],
        "CLOUDSTACK_SECRET": keys[1],
        "CLOUDSTACK_TIMEOUT": "40",
        "CLOUDSTACK_POLL_INTERVAL": "0.5",
    }
    done = subprocess.run(
        [str(CS), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"cs {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_a_cloudstack_session_with_cs_registers_trusts_prepares_revokes_and_deletes(
    gateway: str,
    keys: tuple[str, str],
    nginx: Nginx,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    image = tmp_path / "sample.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(image), "64M"], check=True, capture_output=True
    )
    nginx.add_file("sample.qcow2", image.read_bytes())
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    api = CloudStack(endpoint=gateway, key=keys[0], secret=keys[1], timeout=40, poll_interval=0.5)
    hosts = api.listHosts(zoneid="zone-1")
    assert sorted(h["id"] for h in hosts["host"]) == list(HOSTS)
    assert [(z["id"], z["allocationstate"]) for z in api.listZones()["zone"]] == [
        ("zone-1", "Enabled")
    ]
    assert api.updateZone(id="zone-1", allocationstate="Disabled")["zone"]["allocationstate"] == (
        "Disabled"
    )
    assert api.listZones(id="zone-1")["zone"][0]["allocationstate"] == "Disabled"
    api.updateZone(id="zone-1", allocationstate="Enabled")
    pools = api.listStoragePools(zoneid="zone-1")["storagepool"]
    assert sorted((p["id"], p["hostid"], p["state"]) for p in pools) == [
        ("pool-host-1", "host-1", "Up"),
        ("pool-host-2", "host-2", "Up"),
    ]

    registered = cs_cli(
        gateway,
        keys,
        "registerTemplate",
        "name=sample",
        f"url={nginx.https_url}/sample.qcow2",
        "zoneid=zone-1",
        "hypervisor=KVM",
        "format=QCOW2",
        "directdownload=true",
        f"checksum={{SHA-256}}{digest}",
        "ostypeid=ignored",
    )
    (template,) = registered["template"]
    assert template["status"] == "Bypassed Secondary Storage"
    assert template["checksum"] == digest and template["directdownload"] is True
    template_id = template["id"]

    listed = api.listTemplates(templatefilter="all", zoneid="zone-1")
    assert [t["id"] for t in listed["template"]] == [template_id]

    system = api.updateTemplate(id=template_id, templatetype="SYSTEM")
    assert system["template"]["templatetype"] == "SYSTEM"

    uploaded = cs_cli(
        gateway,
        keys,
        "uploadTemplateDirectDownloadCertificate",
        "name=repo-ca",
        "hypervisor=KVM",
        "zoneid=zone-1",
        f"certificate={nginx.cert_pem_path.read_text()}",
    )
    certificate = uploaded["uploadtemplatedirectdownloadcertificate"]
    assert {h["hostid"]: h["status"] for h in certificate["hostsmap"]} == {
        "host-1": "UPLOADED",
        "host-2": "UPLOADED",
    }

    prepared = api.prepareTemplate(
        templateid=template_id, zoneid="zone-1", hostid="host-1", fetch_result=True
    )
    (placed,) = prepared["template"]["downloaddetails"]
    assert placed["datastore"] == "pool-host-1" and placed["downloadState"] == "DOWNLOADED"
    pooled = data_dir / "host_agent" / "pools" / "host-1" / template_id
    assert hashlib.sha256(pooled.read_bytes()).hexdigest() == digest
    # And listTemplates says where it is, from the hosts' inventories.
    wait_until(
        lambda: (
            [
                d["datastore"]
                for d in api.listTemplates(templatefilter="all", id=template_id)["template"][0][
                    "downloaddetails"
                ]
            ]
            == ["pool-host-1"]
        ),
        timeout=10,
        what="pool-host-1 in the template's downloaddetails",
    )

    listed_certs = api.listTemplateDirectDownloadCertificates(zoneid="zone-1", listhosts=True)
    (entry,) = listed_certs["directdownloadcertificate"]
    assert {h["hostid"]: h["status"] for h in entry["hostsmap"]} == {
        "host-1": "UPLOADED",
        "host-2": "UPLOADED",
    }

    one = api.revokeTemplateDirectDownloadCertificate(
        id=entry["id"], zoneid="zone-1", hostid="host-2"
    )
    assert [(h["hostid"], h["status"]) for h in one["directdownloadcertificatehoststatus"]] == [
        ("host-2", "REVOKED")
    ]
    assert keytool.trusted_aliases(_truststore(data_dir, "host-2")) == []
    assert keytool.trusted_aliases(_truststore(data_dir, "host-1")) == ["repo-ca"]
    zone = api.revokeTemplateDirectDownloadCertificate(
        name="repo-ca", hypervisor="KVM", zoneid="zone-1"
    )
    # host-2 no longer holds it: CloudStack lists only the hosts it was revoked from.
    assert [(h["hostid"], h["status"]) for h in zone["directdownloadcertificatehoststatus"]] == [
        ("host-1", "REVOKED")
    ]
    assert keytool.trusted_aliases(_truststore(data_dir, "host-1")) == []

    timeout = cs_cli(gateway, keys, "listConfigurations", "name=direct.download.socket.timeout")
    (setting,) = timeout["configuration"]
    assert setting["value"] == setting["defaultvalue"] == "5000"
    updated = cs_cli(
        gateway,
        keys,
        "--post",
        "updateConfiguration",
        "name=direct.download.socket.timeout",
        "value=10000",
    )
    assert updated["configuration"]["value"] == "10000"

    # A second prepare finds it cached; its job is read only after the template is gone.
    again = api.prepareTemplate(templateid=template_id, zoneid="zone-1", hostid="host-1")
    deleted = api.deleteTemplate(id=template_id, fetch_result=True)
    assert deleted == {"success": True}
    assert api.listTemplates(templatefilter="all") == {}
    late = api.queryAsyncJobResult(jobid=again["jobid"])
    assert (late["jobstatus"], late["jobresult"]["template"]["id"]) == (1, template_id), late
    assert late["jobresult"]["template"]["downloaddetails"][0]["cached"] is True


def test_bad_credentials_and_unknown_commands_get_cloudstacks_401(
    gateway: str, keys: tuple[str, str]
) -> None:
    for key, secret, command in (
        (keys[0], "not-the-secret", "listZones"),
        ("no-such-key", keys[1], "listZones"),
        (keys[0], keys[1], "deployVirtualMachine"),
    ):
        client = CloudStack(endpoint=gateway, key=key, secret=secret, timeout=10)
        with pytest.raises(CloudStackApiException) as refused:
            getattr(client, command)()
        assert refused.value.error["errorcode"] == 401
        assert "cserrorcode" not in refused.value.error


def _truststore(data_dir: Path, host_id: str) -> Path:
    return data_dir / "host_agent" / "truststores" / f"{host_id}.p12"


def register(api: CloudStack, nginx: Nginx, name: str, data: bytes, slow: bool = False) -> str:
    nginx.add_file(name, data)
    where = f"{nginx.http_url}/slow/{name}" if slow else f"{nginx.http_url}/{name}"
    registered = api.registerTemplate(
        name=name,
        url=where,
        zoneid="zone-1",
        hypervisor="KVM",
        format="RAW",
        checksum="{SHA-256}" + hashlib.sha256(data).hexdigest(),
    )
    return str(registered["template"][0]["id"])


def test_a_prepare_job_outlives_a_gateway_killed_while_its_deploy_runs(
    stack: Stack, keys: tuple[str, str], nginx: Nginx, data_dir: Path
) -> None:
    api = CloudStack(endpoint=stack.endpoint, key=keys[0], secret=keys[1], timeout=40)
    image = os.urandom(8 * 2**20)  # four seconds at the slow location's 2 MB/s
    template_id = register(api, nginx, "big.raw", image, slow=True)
    started = api.prepareTemplate(templateid=template_id, zoneid="zone-1", hostid="host-2")
    job_id = started["jobid"]
    assert api.queryAsyncJobResult(jobid=job_id)["jobstatus"] == 0

    stack.gateway.kill()  # SIGKILL: the deploy's end comes while no gateway runs
    pooled = data_dir / "host_agent" / "pools" / "host-2" / template_id
    wait_until(pooled.exists, timeout=60, what="the deploy to end while the gateway is down")
    stack.gateway.restart(stack.gateway_env)

    deadline = time.monotonic() + 60
    while (job := api.queryAsyncJobResult(jobid=job_id))["jobstatus"] == 0:
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert (job["jobstatus"], job["jobresultcode"]) == (1, 0), job
    (placed,) = job["jobresult"]["template"]["downloaddetails"]
    assert placed["datastore"] == "pool-host-2" and placed["host"] == "host-2"
    assert pooled.read_bytes() == image


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"name": None}, 431, "due to missing parameter name"),
        ({"hypervisor": "VMware"}, 431, "Only direct download of KVM templates"),
        ({"directdownload": "false"}, 432, "Only direct download of KVM templates"),
        ({"checksum": "{SHA-256}12ab"}, 431, "checksum"),
        ({"url": "ftp://127.0.0.1/t.raw"}, 431, "ftp"),
        ({"format": "VHD"}, 431, "format"),
    ],
    ids=["missing-name", "vmware", "not-direct", "bad-checksum", "ftp", "vhd"],
)
def test_bad_input_gets_cloudstacks_answer_and_registers_nothing(
    gateway: str, keys: tuple[str, str], change: dict[str, str | None], status: int, words: str
) -> None:
    api = CloudStack(endpoint=gateway, key=keys[0], secret=keys[1], timeout=40)
    params: dict[str, str | None] = {
        "name": "t",
        "url": "http://127.0.0.1:9/t.raw",
        "zoneid": "zone-1",
        "hypervisor": "KVM",
        "format": "RAW",
    } | change
    with pytest.raises(CloudStackApiException) as refused:
        api.registerTemplate(**{k: v for k, v in params.items() if v is not None})
    error = refused.value.error
    assert error["errorcode"] == status, error
    assert words.lower() in error["errortext"].lower(), error
    assert api.listTemplates(templatefilter="all") == {}


def test_two_gateway_replicas_on_postgresql_share_keys_and_jobs(
    start_service: Callable[..., ServiceProcess],
    broker_accounts: TestAccounts,
    topology: Topology,
    nginx: Nginx,
    data_dir: Path,
) -> None:
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    start_service(
        "host_agent",
        env_prefix="HOST_AGENT",
        extra_env={
            "HOST_AGENT_HOST_ID": "host-1",
            "HOST_AGENT_POOL_ID": "pool-host-1",
            "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
        },
    )
    try:
        with temporary_database() as database:
            replicas = []
            for _ in range(2):
                port = free_port()
                env = {
                    "API_LISTEN_PORT": str(port),
                    "API_SECRETS_KEY": SECRETS_KEY,
                    "API_DATABASE_URL": database,
                }
                replicas.append((start_service("api", env_prefix="API", extra_env=env), port))
            with BusClient(broker_accounts.url("cli"), topology) as client:
                reply = client.call(CreateApiKey(name="replicas"), timeout=20)
            created = ApiKeyCreated.model_validate(reply.result)
            first, second = (
                CloudStack(
                    endpoint=f"http://127.0.0.1:{port}/client/api",
                    key=created.key.api_key,
                    secret=created.secret_key,
                    timeout=40,
                )
                for _, port in replicas
            )
            image = os.urandom(8 * 2**20)
            template_id = register(first, nginx, "shared.raw", image, slow=True)
            job_id = first.prepareTemplate(templateid=template_id, zoneid="zone-1")["jobid"]
            replicas[0][0].kill()  # the replica that started the job is gone

            deadline = time.monotonic() + 60
            while (job := second.queryAsyncJobResult(jobid=job_id))["jobstatus"] == 0:
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
            assert (job["jobstatus"], job["jobresultcode"]) == (1, 0), job
            pooled = data_dir / "host_agent" / "pools" / "host-1" / template_id
            assert pooled.read_bytes() == image
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)
