"""A private broker node shared by the tests that stop and start one: booting a node is the
slow part, and each test leaves it running, with names of its own on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from directdl_testing.private_broker import PrivateBroker


@pytest.fixture(scope="session")
def private_node() -> Iterator[PrivateBroker]:
    with PrivateBroker() as node:
        yield node


@pytest.fixture
def private_broker(private_node: PrivateBroker) -> Iterator[PrivateBroker]:
    """The shared node, running again after the test whatever the test did to it."""
    yield private_node
    private_node.start_app()
