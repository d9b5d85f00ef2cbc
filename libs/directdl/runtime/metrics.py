"""Prometheus metrics, served on each service's /metrics; every series names its service."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

log = structlog.get_logger(__name__)

# The `_created` series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# How something ended, the value of every `outcome` label; a failure's code, from the
# contract's enums, goes in its own `code` label ("" when there is none).
SUCCEEDED = "succeeded"
CACHED = "cached"
FAILED = "failed"
CANCELLED = "cancelled"
SKIPPED = "skipped"
NO_CODE = ""

consumed = Counter(
    "directdl_messages_consumed",
    "Messages taken from a queue and handled (acked), by routing key.",
    ["service", "routing_key"],
)
failed = Counter(
    "directdl_messages_failed",
    "Deliveries whose handler raised unexpectedly (each is retried, then dead-lettered).",
    ["service", "routing_key"],
)
dead_lettered = Counter(
    "directdl_messages_dead_lettered",
    "Messages sent to the dead-letter queue: invalid, or failing every attempt.",
    ["service", "routing_key"],
)
rejected = Counter(
    "directdl_messages_rejected",
    "Messages acked and dropped without effect: a sender not allowed to send them, or an "
    "outcome that names no attempt the service is waiting for.",
    ["service", "routing_key", "reason"],
)
handler_seconds = Histogram(
    "directdl_handler_seconds",
    "Time from taking a message to its commit, for messages handled (acked).",
    ["service", "routing_key"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
queue_messages = Gauge(
    "directdl_queue_messages",
    "Messages waiting in a queue the service consumes (its lag), as the broker last said.",
    ["service", "queue"],
)
bytes_downloaded = Counter(
    "directdl_bytes_downloaded",
    "Template bytes received by a host agent (a resumed partial's bytes are not counted again).",
    ["service", "host"],
)
downloads = Counter(
    "directdl_downloads",
    "Download jobs that ended on a host: succeeded, cached, failed or cancelled, with the "
    "failure's code.",
    ["service", "host", "outcome", "code"],
)
download_seconds = Histogram(
    "directdl_download_seconds",
    "How long download jobs took, from start to their end, by outcome; a failure is timed "
    "until it failed.",
    ["service", "host", "outcome"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
deploys = Counter(
    "directdl_deploys",
    "Deploys that ended: succeeded, cached or failed, with the last attempt's code.",
    ["service", "outcome", "code"],
)
certificate_operations = Counter(
    "directdl_certificate_operations",
    "Per-host certificate outcomes as the hosts answered (a silent host is failed), by the "
    "operation's kind: succeeded, failed or skipped.",
    ["service", "host", "kind", "outcome"],
)
sync_runs = Counter(
    "directdl_sync_runs", "Certificate sync runs, by trigger.", ["service", "trigger"]
)
sync_run_seconds = Histogram(
    "directdl_sync_run_seconds", "Duration of a certificate sync run.", ["service", "trigger"]
)
api_requests = Counter(
    "directdl_api_requests",
    "CloudStack API requests answered, by API (`unknown` for a name not served) and HTTP "
    "status: 401 for every authentication failure, as CloudStack answers.",
    ["service", "api", "status"],
)
api_request_seconds = Histogram(
    "directdl_api_request_seconds",
    "Time to answer a CloudStack API request, the bus round trips included.",
    ["service", "api"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass(frozen=True)
class ScrapedGauge:
    """A gauge computed when /metrics is read (from a database, a file system): the state now,
    not the last value some code remembered to set."""

    name: str
    documentation: str
    labels: tuple[str, ...]

    def family(self, values: Iterable[tuple[Sequence[str], float]]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in values:
            family.add_metric(list(labels), value)
        return family


hosts = ScrapedGauge(
    "directdl_hosts",
    "Hosts registration knows, by zone and state (Up or Down, from their last heartbeat).",
    ("service", "zone", "state"),
)
download_jobs = ScrapedGauge(
    "directdl_download_jobs",
    "A host agent's download jobs not yet ended: queued, running or held (found unfinished at "
    "start, waiting to be resumed or cancelled).",
    ("service", "host", "state"),
)
pool_free_bytes = ScrapedGauge(
    "directdl_pool_free_bytes",
    "Bytes free for downloads on a host's primary storage pool (its file system).",
    ("service", "host", "pool"),
)
pool_used_bytes = ScrapedGauge(
    "directdl_pool_used_bytes",
    "Bytes used on the file system of a host's primary storage pool.",
    ("service", "host", "pool"),
)
certificate_expiry = ScrapedGauge(
    "directdl_certificate_expiry_seconds",
    "Seconds until each certificate not revoked expires (negative once expired).",
    ("service", "certificate", "alias", "zone"),
)
outbox_pending = ScrapedGauge(
    "directdl_outbox_pending",
    "Committed messages not yet published.",
    ("service",),
)
outbox_oldest_age = ScrapedGauge(
    "directdl_outbox_oldest_age_seconds",
    "Age of the oldest committed message not yet published (0 when none waits).",
    ("service",),
)
SCRAPED = (
    hosts,
    download_jobs,
    pool_free_bytes,
    pool_used_bytes,
    certificate_expiry,
    outbox_pending,
    outbox_oldest_age,
)


@dataclass(frozen=True, eq=False)
class ServiceCollector:
    """One service's scrape-time gauges, read by `collect()` each time /metrics is."""

    service: str
    name: str
    collect: Callable[[], Iterable[Metric]]


class ScrapeTime:
    """The process's one registered collector for the scrape-time gauges of whatever services
    run in it. Services come and go (tests run many in one process): each adds its
    collectors when it starts and removes them when it stops, and nothing is registered twice.
    Families of one name from several services are merged into one, as the text format wants."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collectors: list[ServiceCollector] = []

    def add(self, collectors: Iterable[ServiceCollector]) -> None:
        with self._lock:
            self._collectors.extend(collectors)

    def remove(self, collectors: Iterable[ServiceCollector]) -> None:
        with self._lock:
            for collector in collectors:
                self._collectors.remove(collector)

    def describe(self) -> list[Metric]:
        # What it yields depends on the services running; REGISTRY must not reserve names.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            collectors = list(self._collectors)
        merged: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for collector in collectors:
            try:
                families = list(collector.collect())
            except Exception as err:
                # A database that is down costs its gauges, never the whole /metrics.
                log.warning(
                    "metrics.collector_failed",
                    service=collector.service,
                    collector=collector.name,
                    error=f"{type(err).__name__}: {err}",
                )
                continue
            for family in families:
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    # Replicas on one database report the same series: once is enough.
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    if key not in seen:
                        seen.add(key)
                        into.samples.append(sample)
        yield from merged.values()


scrape_time = ScrapeTime()
REGISTRY.register(scrape_time)
