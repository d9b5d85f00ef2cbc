"""A real nginx for HTTP(S) tests: loopback ports, Range and ETag, redirects, a slow path."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from directdl_testing.certs import make_self_signed

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 20
# JSON per line, so tests can assert e.g. "exactly one full GET and one Range GET".
LOG_FORMAT = (
    '{"method":"$request_method","uri":"$request_uri","status":$status,'
    '"range":"$http_range","if_range":"$http_if_range","bytes_sent":$bytes_sent,'
    '"body_bytes_sent":$body_bytes_sent,"x_test":"$http_x_test",'
    '"authorization":"$http_authorization","host":"$http_host"}'
)


class NginxError(RuntimeError):
    """nginx did not start; the message ends with the tail of its error log."""


@dataclass(frozen=True)
class AccessLogEntry:
    """One request as nginx logged it; header fields are "" when the header was absent."""

    method: str
    uri: str
    status: int
    range: str
    if_range: str
    bytes_sent: int
    body_bytes_sent: int
    x_test: str
    authorization: str
    host: str


class Nginx:
    """nginx on free 127.0.0.1 ports serving `root`, over HTTP and HTTPS (`daemon off`).

    `/slow/<name>` serves `root/<name>` at `slow_rate`; `rate_limit` (e.g. "1m") throttles
    everything. `redirects` maps exact paths to absolute targets (`return 302 <target>`);
    "{http_url}" and "{https_url}" in a target stand for this server's own base URLs.
    The certificate is self-signed for IP:127.0.0.1 and DNS:localhost unless `cert_pem` and
    `key_pem` are given. The worker runs as nobody, so the directory is world-readable.
    """

    def __init__(
        self,
        *,
        rate_limit: str | None = None,
        slow_rate: str = "200k",
        redirects: dict[str, str] | None = None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        ports: tuple[int, int] | None = None,
    ) -> None:
        if (cert_pem is None) != (key_pem is None):
            raise ValueError("give both cert_pem and key_pem, or neither")
        self._rate_limit = rate_limit
        self._slow_rate = slow_rate
        self._redirects = dict(redirects or {})
        self._cert = (cert_pem, key_pem)
        self._dir = Path(tempfile.mkdtemp(prefix="directdl-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None
        self.http_port = self.https_port = 0
        self._ports = ports  # fixed (http, https), or free ones when None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def root(self) -> Path:
        return self._dir / "www"

    @property
    def cert_pem_path(self) -> Path:
        return self._dir / "cert.pem"

    def add_file(self, name: str, data: bytes) -> Path:
        """Write `root/name`, readable by the nobody worker."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(data)
        path.chmod(0o644)
        return path

    def access_log_lines(self) -> list[AccessLogEntry]:
        """Every request logged so far (nginx logs a request once its response is sent)."""
        log = self._dir / "access.log"
        if not log.exists():
            return []
        lines = log.read_text().splitlines()
        return [AccessLogEntry(**json.loads(line)) for line in lines if line.strip()]

    def error_log_tail(self) -> str:
        log = self._dir / "error.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def __enter__(self) -> Nginx:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._dir.chmod(0o755)
        self.root.mkdir(mode=0o755, exist_ok=True)
        (self._dir / "temp").mkdir(exist_ok=True)
        cert_pem, key_pem = self._cert
        if cert_pem is None or key_pem is None:
            cert_pem, key_pem = make_self_signed("localhost", ["IP:127.0.0.1", "DNS:localhost"])
        self.cert_pem_path.write_bytes(cert_pem)
        (self._dir / "key.pem").write_bytes(key_pem)
        for _ in range(1 if self._ports else 3):  # a free port may be taken before nginx binds
            self.http_port, self.https_port = self._ports or _free_ports(2)
            (self._dir / "nginx.conf").write_text(self._config())
            if self._launch():
                return
        raise NginxError(f"no free ports after 3 tries:\n{self.error_log_tail()}")

    def _launch(self) -> bool:
        """Start nginx and wait for both ports. False: a port was taken; try others."""
        error_log = self._dir / "error.log"
        error_log.unlink(missing_ok=True)
        with open(self._dir / "stderr.log", "wb") as stderr:
            self._process = subprocess.Popen(
                ["nginx", "-p", str(self._dir), "-e", str(error_log), "-c", "nginx.conf"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # its own process group: stop() can reap the workers
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                tail = self.error_log_tail()
                if "Address already in use" in tail:
                    return False
                raise NginxError(f"nginx exited at start; error.log ends:\n{tail}")
            if all(_accepts(port) for port in (self.http_port, self.https_port)):
                return True
            time.sleep(0.02)
        self.stop()
        raise NginxError(
            f"nginx did not listen within {START_TIMEOUT_S:g} s:\n{self.error_log_tail()}"
        )

    def stop(self) -> None:
        """SIGQUIT (finish the requests in flight), SIGKILL the group after STOP_TIMEOUT_S."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # a killed master leaves its workers
            process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _redirect_locations(self) -> str:
        lines = []
        for path, target in self._redirects.items():
            url = target.replace("{http_url}", self.http_url)
            url = url.replace("{https_url}", self.https_url)
            if not path.startswith("/") or any(c in path + url for c in '"$;{}\n\\ '):
                raise ValueError(f"unusable redirect {path!r} -> {target!r}")
            lines.append(f'    location = {path} {{ return 302 "{url}"; }}\n')
        return "".join(lines)

    def _config(self) -> str:
        d = self._dir
        temp = "".join(
            f'  {kind}_temp_path "{d}/temp/{kind}";\n'
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        redirects = self._redirect_locations()
        rate = f"    limit_rate {self._rate_limit};\n" if self._rate_limit else ""
        return (
            f'daemon off;\nworker_processes 1;\npid "{d}/nginx.pid";\n'
            f'error_log "{d}/error.log" info;\nevents {{ worker_connections 64; }}\n'
            f"http {{\n  log_format directdl escape=json '{LOG_FORMAT}';\n"
            f'  access_log "{d}/access.log" directdl;\n{temp}'
            "  default_type application/octet-stream;\n  sendfile on;\n"
            "  server {\n"
            f"    listen 127.0.0.1:{self.http_port};\n"
            f"    listen 127.0.0.1:{self.https_port} ssl;\n"
            f'    ssl_certificate "{d}/cert.pem";\n    ssl_certificate_key "{d}/key.pem";\n'
            f'    root "{d}/www";\n{rate}'
            f'    location /slow/ {{ alias "{d}/www/"; limit_rate {self._slow_rate}; }}\n'
            f"{redirects}  }}\n}}\n"
        )


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
