"""The metrics' shape: one label vocabulary, and scrape-time gauges that a failure cannot break."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from sqlalchemy import MetaData, update
from structlog.testing import capture_logs

from directdl.bus.relay import OutboxRelay
from directdl.bus.store import MessageStore, Outgoing, utcnow
from directdl.runtime import metrics
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine

pytestmark = pytest.mark.unit

# Each service's modules that count something, so that every metric is defined.
SERVICE_MODULES = ("registration.bootstrap", "certificate.bootstrap", "sync_scheduler.bootstrap")


def wrappers() -> list[MetricWrapperBase]:
    for module in (*SERVICE_MODULES, "host_agent.bootstrap"):
        importlib.import_module(module)
    return [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]


def test_every_metric_names_its_service_and_follows_the_naming_rules() -> None:
    defined = wrappers()
    assert defined, "metrics.py defines no metric"
    for metric in defined:
        labels = cast(tuple[str, ...], metric._labelnames)
        assert labels[0] == "service", metric._name
        assert metric._name.startswith("directdl_")
        assert not metric._name.endswith("_total"), "prometheus_client adds it to counters"
    for gauge in metrics.SCRAPED:
        assert gauge.labels[0] == "service", gauge.name
    # The scrape-time collector reserves no names in REGISTRY, so nothing else may take them.
    assert not {g.name for g in metrics.SCRAPED} & {m._name for m in defined}
    bytes_gauges = [g for g in metrics.SCRAPED if g.name.endswith("_bytes")]
    assert {g.name for g in bytes_gauges} == {
        "directdl_pool_free_bytes",
        "directdl_pool_used_bytes",
    }


def test_outcomes_are_lower_case_and_codes_have_their_own_label() -> None:
    vocabulary = {
        metrics.SUCCEEDED,
        metrics.CACHED,
        metrics.FAILED,
        metrics.CANCELLED,
        metrics.SKIPPED,
    }
    assert all(o == o.lower() for o in vocabulary)
    with_outcome = [m for m in wrappers() if "outcome" in m._labelnames]
    assert {m._name for m in with_outcome} == {
        "directdl_downloads",
        "directdl_download_seconds",
        "directdl_deploys",
        "directdl_certificate_operations",
    }
    # An outcome carries its code beside it wherever the contract gives failures one.
    assert {m._name for m in with_outcome if "code" in m._labelnames} == {
        "directdl_downloads",
        "directdl_deploys",
    }


def gauge(service: str, value: float) -> Iterable[Metric]:
    return [metrics.outbox_pending.family([((service,), value)])]


def broken() -> Iterable[Metric]:
    raise ConnectionError("database is down")


@pytest.fixture
def added() -> Iterator[list[metrics.ServiceCollector]]:
    """Collectors a test adds to the process's scrape-time collector; removed after it."""
    collectors: list[metrics.ServiceCollector] = []
    yield collectors
    metrics.scrape_time.remove(collectors)


def scrape() -> str:
    return generate_latest(REGISTRY).decode()


def test_a_failing_collector_costs_its_gauges_and_is_logged_not_the_whole_scrape(
    added: list[metrics.ServiceCollector],
) -> None:
    added += [
        metrics.ServiceCollector("svc-a", "hosts", broken),
        metrics.ServiceCollector("svc-a", "outbox", lambda: gauge("svc-a", 3)),
    ]
    metrics.scrape_time.add(added)

    with capture_logs() as logs:
        text = scrape()

    assert 'directdl_outbox_pending{service="svc-a"} 3.0' in text
    assert "directdl_messages_consumed_total" in text
    [failure] = [e for e in logs if e["event"] == "metrics.collector_failed"]
    assert failure["service"] == "svc-a" and failure["collector"] == "hosts"
    assert failure["error"] == "ConnectionError: database is down"


def test_services_in_one_process_share_one_family_per_name_and_leave_nothing_behind(
    added: list[metrics.ServiceCollector],
) -> None:
    a = metrics.ServiceCollector("svc-a", "outbox", lambda: gauge("svc-a", 1))
    b = metrics.ServiceCollector("svc-b", "outbox", lambda: gauge("svc-b", 2))
    # A replica on the same database reports the same series: it is shown once.
    replica = metrics.ServiceCollector("svc-b", "outbox", lambda: gauge("svc-b", 2))
    added += [a, b, replica]
    metrics.scrape_time.add(added)

    text = scrape()
    assert text.count("# TYPE directdl_outbox_pending gauge") == 1
    assert 'directdl_outbox_pending{service="svc-a"} 1.0' in text
    assert text.count('directdl_outbox_pending{service="svc-b"} 2.0') == 1

    metrics.scrape_time.remove(added)
    added.clear()
    assert 'service="svc-a"' not in scrape()


def outbox() -> tuple[MessageStore, Any]:
    store = MessageStore(MetaData())
    return store, session_factory(memory_engine(store.outbox.metadata))


def relay_gauges(store: MessageStore, sessions: Any) -> dict[str, float]:
    relay = OutboxRelay(store, sessions, app_id="svc-a")
    return {f.name: f.samples[0].value for f in relay.gauges()}


def test_the_outbox_gauges_say_how_many_wait_and_since_when() -> None:
    store, sessions = outbox()
    assert relay_gauges(store, sessions) == {
        "directdl_outbox_pending": 0,
        "directdl_outbox_oldest_age_seconds": 0,
    }
    with sessions() as session:
        for n in range(3):
            store.enqueue(session, Outgoing(f"m{n}", "directdl", "a.b", b"{}"))
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(
            update(store.outbox)
            .where(store.outbox.c.message_id == "m0")
            .values(created_at=an_hour_ago)
        )
        session.commit()

    waiting = relay_gauges(store, sessions)
    assert waiting["directdl_outbox_pending"] == 3
    assert 3600 <= waiting["directdl_outbox_oldest_age_seconds"] < 3660

    with sessions() as session:
        [first] = [m for m in store.pending(session) if m.message_id == "m0"]
        assert first.id is not None
        store.mark_sent(session, first.id)
        session.commit()
    rest = relay_gauges(store, sessions)
    assert rest["directdl_outbox_pending"] == 2
    assert rest["directdl_outbox_oldest_age_seconds"] < 60
