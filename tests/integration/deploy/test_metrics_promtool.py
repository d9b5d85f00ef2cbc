"""Every kind of service's /metrics after real traffic: what promtool accepts, and gauges that
tell the state (hosts Up, jobs, pool space, certificate expiry, outbox age)."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts import certificate as cert
from directdl.contracts import deploy
from directdl.contracts import template as tpl
from directdl.contracts.sync import RunSync
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.nginx import Nginx
from directdl_testing.services import running
from sync_scheduler.bootstrap import bootstrap as scheduler_bootstrap
from sync_scheduler.config import SchedulerSettings

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scheduler(accounts: TestAccounts, topology: Topology, data_dir: Path) -> Service[Any]:
    return scheduler_bootstrap(
        SchedulerSettings(
            AMQP_URL=accounts.url("sync-scheduler"),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=data_dir,
            health_port=0,
        )
    )


@pytest.fixture
def sync_scheduler(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> Iterator[Service[Any]]:
    with running(scheduler(broker_accounts, topology, data_dir)) as service:
        yield service


def scrape(service: Service[Any]) -> str:
    url = f"http://127.0.0.1:{service.health.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def traffic(client: BusClient, nginx: Nginx, tmp_path: Path) -> None:
    """A deploy that succeeds, one that fails (404 on both hosts), a certificate uploaded to
    both hosts, and a sync run."""
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(tmp_path / "m.qcow2"), "64M"],
        check=True,
        capture_output=True,
    )
    nginx.add_file("m.qcow2", (tmp_path / "m.qcow2").read_bytes())
    for name in ("m.qcow2", "missing.qcow2"):
        registered = client.call(
            tpl.RegisterTemplate(
                name=name,
                url=f"{nginx.http_url}/{name}",
                zone_id="zone-1",
                hypervisor="KVM",
                format="QCOW2",
                validate_url=False,
            )
        )
        assert registered.result is not None, registered.error
        template_id = registered.result["template"]["id"]
        deployed = client.call(
            deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"), timeout=60
        )
        assert deployed.ok is (name == "m.qcow2"), deployed.error
    uploaded = client.call(
        cert.UploadCertificate(
            name="metrics-ca",
            zone_id="zone-1",
            hypervisor="KVM",
            certificate=nginx.cert_pem_path.read_text(),
        )
    )
    assert uploaded.ok, uploaded.error
    assert client.call(RunSync(), timeout=30).ok


def test_each_service_exposes_what_promtool_accepts_and_gauges_that_tell_the_state(
    stack: Any,
    sync_scheduler: Service[Any],
    nginx: Nginx,
    client: BusClient,
    tmp_path: Path,
) -> None:
    # Counters are the process's: tests that ran here before counted too.
    before = samples(scrape(stack.registration))
    traffic(client, nginx, tmp_path)
    services: dict[str, Service[Any]] = {
        "registration": stack.registration,
        "certificate": stack.certificate,
        "sync-scheduler": sync_scheduler,
        **{f"host-agent-{h}": agent for h, agent in stack.agents.items()},
    }
    texts = {name: scrape(service) for name, service in services.items()}
    # One process runs them all, so each /metrics shows every service's series.
    found = samples(texts["registration"])

    def moved(name: str, **labels: str) -> float:
        return (value(found, name, **labels) or 0) - (value(before, name, **labels) or 0)

    hosts = {"service": "registration", "zone": "zone-1"}
    assert value(found, "directdl_hosts", **hosts, state="Up") == 2
    assert value(found, "directdl_hosts", **hosts, state="Down") == 0
    deploys = {"service": "registration", "outcome": "succeeded", "code": ""}
    assert moved("directdl_deploys_total", **deploys) == 1
    deploys |= {"outcome": "failed", "code": "NOT_FOUND"}
    assert moved("directdl_deploys_total", **deploys) == 1

    misses = 0.0
    for host_id in stack.agents:
        agent = {"service": f"host-agent-{host_id}", "host": host_id}
        pool = {**agent, "pool": f"pool-{host_id}"}
        assert (value(found, "directdl_pool_free_bytes", **pool) or 0) > 0
        assert (value(found, "directdl_pool_used_bytes", **pool) or 0) > 0
        for state in ("queued", "running", "held"):
            assert value(found, "directdl_download_jobs", **agent, state=state) == 0
        misses += moved("directdl_downloads_total", **agent, outcome="failed", code="NOT_FOUND")
        upload = {"service": "certificate", "host": host_id, "kind": "upload"}
        assert moved("directdl_certificate_operations_total", **upload, outcome="succeeded") == 1
    assert misses == 1, "one host tried the missing template: NOT_FOUND is not retried elsewhere"

    [(labels, left)] = [
        (dict(k[1]), v) for k, v in found.items() if k[0] == "directdl_certificate_expiry_seconds"
    ]
    assert (labels["alias"], labels["zone"]) == ("metrics-ca", "zone-1")
    assert 0 < left <= 30 * 86400  # the nginx fixture's certificate is valid for 30 days
    runs = {"service": "sync-scheduler", "trigger": "request"}
    assert moved("directdl_sync_runs_total", **runs) == 1
    for name in services:
        age = value(found, "directdl_outbox_oldest_age_seconds", service=name)
        assert age is not None and 0 <= age < 60, (name, age)

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package): not linted")
    for name, text in texts.items():
        checked = subprocess.run(
            [promtool, "check", "metrics"], check=False, input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, (name, checked.stdout, checked.stderr)


def test_a_stopped_service_takes_its_gauges_with_it_and_can_start_again(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> None:
    series = 'directdl_outbox_pending{service="sync-scheduler"}'
    for _ in range(2):  # a second start registers nothing twice
        with running(scheduler(broker_accounts, topology, data_dir)) as service:
            assert scrape(service).count(series) == 1
        assert series not in generate_latest(REGISTRY).decode()
