"""Without Docker and without a broker, resolution fails with one line saying what to do."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from directdl_testing.broker import BrokerUnavailable, resolve_broker_url

pytestmark = pytest.mark.unit


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_docker_and_no_broker_raises_one_actionable_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    url = f"amqp://guest:s3cret@127.0.0.1:{_closed_port()}/"
    monkeypatch.setenv("AMQP_URL", url)

    with pytest.raises(BrokerUnavailable) as raised:
        resolve_broker_url()

    message = str(raised.value)
    assert "\n" not in message
    assert "rabbitmq-server -detached" in message
    assert "AMQP_URL" in message
    assert "s3cret" not in message
    assert "no Docker engine" in message
