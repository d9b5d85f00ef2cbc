"""The Grafana dashboard asks only for metrics and labels that exist, and Prometheus scrapes
every service of compose.yaml at its health port."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from directdl.runtime import metrics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/directdl.json"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
COMPOSE = ROOT / "compose.yaml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
SELECTOR = re.compile(r"\b(directdl_[a-z0-9_]+)(?:\{([^}]*)\})?")
GROUPING = re.compile(r"\bby \(([^)]*)\)")


def exposed() -> dict[str, set[str]]:
    """Every series name the services can expose, with its labels."""
    for service in ("registration", "certificate", "sync_scheduler", "host_agent", "api"):
        importlib.import_module(f"{service}.bootstrap")
    names: dict[str, set[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            [family] = metric.describe()
            extra = {"le"} if family.type == "histogram" else set()
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = set(metric._labelnames) | extra
    for gauge in metrics.SCRAPED:
        names[gauge.name] = set(gauge.labels)
    return names


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_every_query_names_metrics_and_labels_that_exist() -> None:
    names = exposed()
    for title, expr in expressions():
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{title}: {expr} asks for no directdl metric"
        labels: set[str] = set()
        for name, matchers in selectors:
            assert name in names, f"{title}: {name} is not a metric the services expose"
            labels |= names[name]
            matched = {m.split("=")[0].strip(" !~") for m in matchers.split(",") if m.strip()}
            assert matched <= names[name], f"{title}: {name} has no label {matched - names[name]}"
        for grouping in GROUPING.findall(expr):
            grouped = {label.strip() for label in grouping.split(",")}
            assert grouped <= labels, f"{title}: {expr} groups by {grouped - labels}"


def test_the_dashboard_shows_the_state_and_the_flow() -> None:
    used = {name for _, expr in expressions() for name, _ in SELECTOR.findall(expr)}
    wanted = {
        "directdl_deploys_total",
        "directdl_downloads_total",
        "directdl_bytes_downloaded_total",
        "directdl_download_seconds_bucket",
        "directdl_queue_messages",
        "directdl_handler_seconds_bucket",
        *(gauge.name for gauge in metrics.SCRAPED if gauge is not metrics.outbox_pending),
    }
    assert wanted <= used, f"not shown: {sorted(wanted - used)}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_promql_that_promtool_parses(tmp_path: Path) -> None:
    # Grafana fills $__rate_interval; promtool parses PromQL in recording rules.
    rules = [
        {"record": f"directdl:panel_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, (_, expr) in enumerate(expressions())
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def scraped_targets() -> set[str]:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= set(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets |= {f"{name}:{dns['port']}" for name in dns["names"]}
    return targets


def compose_targets() -> set[str]:
    """Each service of compose.yaml that serves /metrics, by its name and its health port."""
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    targets = set()
    for name, service in services.items():
        environment = service.get("environment", {})
        ports = [v for k, v in environment.items() if k.endswith("_HEALTH_PORT")]
        assert len(ports) <= 1, f"{name} sets more than one health port"
        targets |= {f"{name}:{port}" for port in ports}
    assert targets, "compose.yaml has no service with a health port"
    return targets


def test_prometheus_scrapes_every_service_of_compose_at_its_health_port() -> None:
    assert scraped_targets() == compose_targets()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_prometheus_configuration_is_valid() -> None:
    checked = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(PROMETHEUS)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_readme_lists_every_metric_with_its_labels() -> None:
    """The README's Metrics table names each metric family and its labels, as exposed."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Metrics") :]
    section = section[: section.index("\n## ", 1)]
    documented: dict[str, set[str]] = {}
    for row in re.findall(r"^\| (`directdl_.*)$", section, flags=re.M):
        cells = [cell.strip() for cell in row.split("|")]
        for name in re.findall(r"`(directdl_[a-z0-9_]+)`", cells[0]):
            documented[name] = {label.strip() for label in cells[2].split(",")}
    series = exposed()
    families = {family(name, series): labels - {"le"} for name, labels in series.items()}
    assert documented == families


def family(name: str, series: dict[str, set[str]]) -> str:
    """A histogram's series (`_bucket`, `_count`, `_sum`) are of the one family."""
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) + "_count" in series:
            return name.removesuffix(suffix)
    return name
