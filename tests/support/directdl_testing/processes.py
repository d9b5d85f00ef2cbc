"""Services as separate processes: start one, wait until it is ready, signal it, read its logs."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from directdl_testing.waiting import wait_until

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40
# Inherited variables that would change what the service under test does.
OWN_PREFIXES = ("AMQP_URL", "DIRECTDL_")


class ServiceProcess:
    """One service run as `python -m <module>`, its stderr (JSON log lines) in a file per start.

    `start()` returns once GET /readyz answers 200; `stop()` always leaves no process behind.
    """

    def __init__(
        self,
        module: str,
        env: Mapping[str, str],
        health_port: int,
        log_dir: Path,
    ) -> None:
        self.module = module
        self.env = dict(env)
        self.health_port = health_port
        self.log_dir = log_dir
        self.log_paths: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The stderr of the current (or last) run."""
        if not self.log_paths:
            raise RuntimeError(f"{self.module} was never started")
        return self.log_paths[-1]

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.module} is not running")
        return self.process.pid

    def start(
        self, extra_env: Mapping[str, str] | None = None, timeout: float = READY_TIMEOUT_S
    ) -> ServiceProcess:
        """Start with the base env plus `extra_env` (for this run only); wait until ready."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"{self.module} is already running (pid {self.process.pid})")
        name = f"{self.module}-{self.health_port}-{len(self.log_paths) + 1}"
        log_path = self.log_dir / f"{name}.stderr.log"
        self.log_paths.append(log_path)
        with log_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env | dict(extra_env or {}),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        _running.add(self)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        process = self.process
        assert process is not None
        # Also stop polling when the process dies, so a crash fails fast with its log.
        wait_until(
            lambda: process.poll() is not None or self.ready(),
            timeout=timeout,
            interval=0.05,
            what=f"{self.module} /readyz on port {self.health_port}\n{self.log_tail()}",
        )
        if process.poll() is not None:
            raise AssertionError(
                f"{self.module} exited with {process.returncode} before it was ready:\n"
                f"{self.log_tail()}"
            )

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False  # not listening yet, or 503 while it connects to the broker

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig`; for SIGKILL, also wait until the process is gone."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.module} is not running")
        self.process.send_signal(sig)
        if sig == signal.SIGKILL:
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def restart(
        self, extra_env: Mapping[str, str] | None = None, timeout: float = READY_TIMEOUT_S
    ) -> ServiceProcess:
        """Stop if still running, start again with the same data dir and port."""
        self.stop()
        return self.start(extra_env, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            # A stopped (SIGSTOP) process would not act on SIGTERM until continued.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        _running.discard(self)
        return process.returncode

    def logs(self, all_runs: bool = False) -> list[dict[str, Any]]:
        """The JSON log lines of the current run (or of every run), in order."""
        records: list[dict[str, Any]] = []
        for path in self.log_paths if all_runs else self.log_paths[-1:]:
            records.extend(_json_lines(path))
        return records

    def find_logs(self, event: str, all_runs: bool = False, **fields: Any) -> list[dict[str, Any]]:
        return [
            record
            for record in self.logs(all_runs)
            if record.get("event") == event
            and all(record.get(key) == value for key, value in fields.items())
        ]

    def wait_for_log(self, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Poll this run's stderr for a JSON line whose "event" is `event` (and `fields` match)."""
        found = wait_until(
            lambda: self.find_logs(event, **fields),
            timeout=timeout,
            interval=0.05,
            what=f"log event {event!r} {fields or ''} from {self.module}\n{self.log_tail()}",
        )
        return found[0]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_paths:
            return f"({self.module} never started)"
        text = self.log_path.read_text(errors="replace")
        tail = "\n".join(text.splitlines()[-lines:])
        return f"last lines of {self.log_path.name}:\n{tail or '(empty)'}"


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return
    # Only complete lines: the last one may still be being written.
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


# Fixture teardown stops every process; this also covers a session that ends without it
# (an interrupt between setup and teardown, pytest-timeout's thread method, ...).
_running: set[ServiceProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_running):
        with contextlib.suppress(Exception):
            service.stop(timeout=2)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without our own settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env = {k: v for k, v in env.items() if not k.startswith("REGISTRATION_")}
    return env | {"PYTHONUNBUFFERED": "1"} | overrides
