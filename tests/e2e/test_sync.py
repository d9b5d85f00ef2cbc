"""The sync-scheduler end to end: hosts that missed a certificate, or lost one, or kept a
revoked one, are brought in line; certificate service, scheduler and two agents as processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from directdl_testing import keytool
from directdl_testing.certs import make_self_signed
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

BEAT = "0.5"
INTERVAL_HOURS = "0.001"  # 3.6 seconds; fractions are allowed for tests and the impatient


def agent_env(host_id: str) -> dict[str, str]:
    return {
        "HOST_AGENT_HOST_ID": host_id,
        "HOST_AGENT_POOL_ID": f"pool-{host_id}",
        "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
    }


def store(data_dir: Path, host_id: str) -> Path:
    return data_dir / "host_agent" / "truststores" / f"{host_id}.p12"


def aliases(data_dir: Path, host_id: str) -> list[str]:
    return keytool.trusted_aliases(store(data_dir, host_id))


def pem_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.pem"
    path.write_bytes(make_self_signed(f"{name}.example", [f"DNS:{name}.example"])[0])
    return str(path)


def test_hosts_are_brought_in_line_with_their_zone(
    start_service: Callable[..., Any], cli: Any, data_dir: Path, tmp_path: Path
) -> None:
    start_service("certificate", env_prefix="CERTIFICATE")
    start_service("sync_scheduler", env_prefix="SYNC_SCHEDULER")
    host_1 = start_service("host_agent", env_prefix="HOST_AGENT", extra_env=agent_env("host-1"))
    interval = cli(
        "settings",
        "set",
        "direct.download.certificate.background.task.interval",
        INTERVAL_HOURS,
        "--json",
    )
    assert interval.code == 0, interval
    # A host that has just stopped may not yet be Down in the certificate service's view; it
    # is then asked, and FAILED after this long rather than after the default 30 s.
    host_timeout = cli("settings", "set", "directdl.certificate.host.timeout", "3")
    assert host_timeout.code == 0, host_timeout
    within = 3 * 3.6  # a run, plus a heartbeat or two to see the result

    # uploaded while host 2 is down: host 2 gets it as soon as it comes up
    assert (
        cli(
            "cert",
            "upload",
            "--name",
            "alpha",
            "--zone",
            "zone-1",
            "--file",
            pem_file(tmp_path, "alpha"),
        ).code
        == 0
    )
    host_2 = start_service("host_agent", env_prefix="HOST_AGENT", extra_env=agent_env("host-2"))
    wait_until(
        lambda: aliases(data_dir, "host-2") == ["alpha"], timeout=within, what="alpha on host 2"
    )

    # removed by hand with keytool on host 1: the next run puts it back
    keytool.delete(store(data_dir, "host-1"), "alpha")
    assert aliases(data_dir, "host-1") == []
    wait_until(
        lambda: aliases(data_dir, "host-1") == ["alpha"],
        timeout=within,
        what="alpha back on host 1",
    )

    # revoked while host 2 is down: removed on host 1 at once, on host 2 when it is back
    assert (
        cli(
            "cert",
            "upload",
            "--name",
            "beta",
            "--zone",
            "zone-1",
            "--file",
            pem_file(tmp_path, "beta"),
        ).code
        == 0
    )
    wait_until(
        lambda: aliases(data_dir, "host-2") == ["alpha", "beta"],
        timeout=within,
        what="beta on host 2",
    )
    host_2.stop()
    revoked = cli("cert", "revoke", "--name", "beta", "--zone", "zone-1", "--json")
    assert revoked.code == 0, revoked
    assert [(h["host_id"], h["state"]) for h in revoked.json()["result"]["hosts"]] == [
        ("host-1", "REVOKED")
    ]
    assert aliases(data_dir, "host-1") == ["alpha"]
    assert aliases(data_dir, "host-2") == ["alpha", "beta"]
    host_2.start(agent_env("host-2"))
    wait_until(
        lambda: aliases(data_dir, "host-2") == ["alpha"],
        timeout=within,
        what="beta gone from host 2",
    )
    assert host_1.ready()

    report = cli("sync", "run", "--json")
    assert report.code == 0, report
    assert report.json()["result"]["hosts_checked"] == 2
