"""Prometheus metrics, served on each service's /metrics; every series names its service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "Time from taking a message to its commit.",
    ["service", "routing_key"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
queue_messages = Gauge(
    "directdl_queue_messages",
    "Messages waiting in a queue the service consumes (its lag), as the broker last said.",
    ["service", "queue"],
)
outbox_pending = Gauge(
    "directdl_outbox_pending", "Committed messages not yet published.", ["service"]
)
bytes_downloaded = Counter(
    "directdl_bytes_downloaded", "Template bytes received by a host agent.", ["host"]
)
download_seconds = Histogram(
    "directdl_download_seconds",
    "Download jobs from start to verified file, by outcome.",
    ["host", "outcome"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
deploys = Counter("directdl_deploys", "Deploys that ended, by outcome.", ["outcome"])
certificate_operations = Counter(
    "directdl_certificate_operations",
    "Per-host certificate outcomes, as the hosts answered.",
    ["kind", "state"],
)
sync_runs = Counter("directdl_sync_runs", "Certificate sync runs, by trigger.", ["trigger"])
sync_run_seconds = Histogram(
    "directdl_sync_run_seconds", "Duration of a certificate sync run.", ["trigger"]
)
