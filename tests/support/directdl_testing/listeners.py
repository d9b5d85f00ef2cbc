"""Loopback listeners for destination tests: one that counts connections, one that answers."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class CountingListener:
    """A TCP listener on `host` that never answers: a test that expects nothing to reach an
    address listens there and asserts `accepted == 0`. The kernel completes a connection
    into the backlog on its own, so counting what waits there misses none, without sleeps."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        self.host = host
        self._seen = 0
        self._socket = socket.create_server((host, port), backlog=64)
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]

    def url(self, path: str = "/file.raw", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    @property
    def accepted(self) -> int:
        """Connections that reached this listener so far."""
        while True:
            try:
                conn, _ = self._socket.accept()
            except BlockingIOError:
                return self._seen
            self._seen += 1
            conn.close()

    def __enter__(self) -> CountingListener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._socket.close()


class ScriptedServer:
    """HTTP on 127.0.0.1 answering every request with one status, reason, headers and body;
    `requests` counts what arrived. A redirect is `ScriptedServer(302, {"Location": url})`."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        reason: str | None = None,
    ) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, with_body: bool) -> None:
                outer.requests += 1
                self.send_response(status, reason)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test's output is not the place for an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/file.raw") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
