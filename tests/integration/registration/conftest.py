"""A registration service running in a thread against the test's broker names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.topology import Topology
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.services import running
from registration.bootstrap import bootstrap
from registration.config import RegistrationSettings

SettingsFactory = Callable[..., RegistrationSettings]


@pytest.fixture
def registration_settings(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> SettingsFactory:
    def make(**overrides: Any) -> RegistrationSettings:
        return RegistrationSettings(
            AMQP_URL=broker_accounts.url("registration"),
            DIRECTDL_EXCHANGE=topology.exchange,
            DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
            DIRECTDL_DATA_DIR=data_dir,
            health_port=0,
            check_urls=False,  # these tests register made-up URLs; tests/integration/deploy don't
            **overrides,
        )

    return make


@pytest.fixture
def registration(registration_settings: SettingsFactory) -> Iterator[Service]:
    with running(bootstrap(registration_settings())) as service:
        yield service
