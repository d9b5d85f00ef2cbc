"""The health server: `/healthz` says the process is alive, `/readyz` that it can work,
`/metrics` what it has done (Prometheus text format)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = structlog.get_logger(__name__)

Check = Callable[[], None]
"""Returns when fine; raises with a reason when not."""


class HealthServer:
    def __init__(self, host: str, port: int, checks: Mapping[str, Check]) -> None:
        self.checks = checks
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._send(200, {"status": "alive"})
                elif self.path == "/readyz":
                    ready, checks = server.readiness()
                    self._send(200 if ready else 503, {"ready": ready, "checks": checks})
                elif self.path == "/metrics":
                    data = generate_latest(REGISTRY)
                    self.send_response(200)
                    self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._send(404, {"error": f"no such endpoint {self.path!r}"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the service's own logs

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="health", daemon=True
        )

    def readiness(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        results: dict[str, dict[str, Any]] = {}
        for name, check in self.checks.items():
            try:
                check()
            except Exception as err:
                results[name] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            else:
                results[name] = {"ok": True}
        return all(r["ok"] for r in results.values()), results

    def start(self) -> None:
        self._thread.start()
        log.debug("health.listening", port=self.port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
