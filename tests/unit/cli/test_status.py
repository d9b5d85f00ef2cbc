"""`directdl status`: readiness shown even with the broker down, health URLs as announced."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from directdl.bus.topology import Topology
from directdl.cli import main, watch
from directdl.cli.session import Session

pytestmark = pytest.mark.unit

UNREACHABLE_URL = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ready": True, "checks": {"broker": {"ok": True}}}).encode()
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None  # the test's output is the CLI's


@pytest.fixture
def readyz() -> Iterator[str]:
    """The base URL of a real HTTP server whose /readyz says ready."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", UNREACHABLE_URL)
    monkeypatch.delenv("DIRECTDL_HEALTH_URLS", raising=False)
    monkeypatch.delenv("DIRECTDL_OUTPUT", raising=False)


@pytest.mark.usefixtures("broker_down")
def test_readiness_is_printed_before_the_broker_s_exit_4(readyz: str) -> None:
    result = CliRunner().invoke(main.app, ["status", "--health", f"registration={readyz}"])
    assert result.exit_code == 4, result.output
    line = next(line for line in result.stdout.splitlines() if "registration" in line)
    assert "True" in line and "broker" in line
    assert "UNREACHABLE" in result.stderr


@pytest.mark.usefixtures("broker_down")
def test_with_json_the_readiness_is_in_the_error_s_details(readyz: str) -> None:
    health = f"registration={readyz},missing=http://127.0.0.1:1"
    result = CliRunner().invoke(main.app, ["status", "-o", "json", "--health", health])
    assert result.exit_code == 4
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "UNREACHABLE"
    services = error["details"]["services"]
    assert [(s["service"], s["ready"]) for s in services] == [
        ("registration", True),
        ("missing", False),
    ]
    assert error["details"]["health_from"] == "DIRECTDL_HEALTH_URLS"
    assert result.stderr == ""


@pytest.mark.usefixtures("broker_down")
def test_without_announcements_it_falls_back_to_the_defaults_and_says_so() -> None:
    result = CliRunner().invoke(main.app, ["status"])
    assert result.exit_code == 4
    assert "host-agent-host-2" in result.stdout  # one of the defaults
    assert "health endpoints: defaults, as discovery failed" in result.stdout


@dataclass(frozen=True)
class Announced:
    """The fields of ServiceAnnounced that status reads."""

    service: str
    instance: str
    health_url: str | None


def test_announced_health_urls_are_used_and_replicas_told_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    announced = [
        Announced("sync-scheduler", "b", "http://127.0.0.1:8184"),
        Announced("registration", "a", "http://127.0.0.1:8181"),
        Announced("sync-scheduler", "a", "http://127.0.0.1:8183"),
        Announced("certificate", "a", None),  # announced no health server
    ]
    monkeypatch.setattr(watch, "discover", lambda amqp_url, topology: announced)
    targets, source = watch.health_targets(Session("", Topology(), 1.0), None)
    assert source == "announced"
    assert targets == [
        ("registration", "http://127.0.0.1:8181"),
        ("sync-scheduler/a", "http://127.0.0.1:8183"),
        ("sync-scheduler/b", "http://127.0.0.1:8184"),
    ]


def test_the_override_wins_over_announcements(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(amqp_url: str, topology: Topology) -> list[Announced]:
        raise AssertionError("discovery asked despite DIRECTDL_HEALTH_URLS")

    monkeypatch.setattr(watch, "discover", never)
    session = Session("", Topology(), 1.0)
    targets, source = watch.health_targets(session, "a=http://x:1, b=http://y:2")
    assert (targets, source) == ([("a", "http://x:1"), ("b", "http://y:2")], "DIRECTDL_HEALTH_URLS")
