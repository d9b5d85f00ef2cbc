"""AMQP topic-pattern matching, as the in-memory bus and recorders use it."""

from __future__ import annotations

import pytest

from directdl.bus.topology import topic_matches

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#", "template.registered", True),
        ("#", "a", True),
        ("template.#", "template.registered", True),
        ("template.#", "template", True),
        ("template.#", "template.deploy.failed", True),
        ("template.#", "templates.x", False),
        ("template.*", "template.registered", True),
        ("template.*", "template.deploy.failed", False),
        ("*.registered", "template.registered", True),
        ("host.*.template.#", "host.h1.template.download", True),
        ("host.*.template.#", "host.h1.cert.upload", False),
        ("#.failed", "template.deploy.failed", True),
        ("#.failed", "failed", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("test.note.add", "test.note.added", False),
    ],
)
def test_topic_matches(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected
