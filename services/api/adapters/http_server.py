"""The CloudStack API's HTTP server: waitress, whose fixed pool of threads suits calls that
block on the broker, each thread with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from waitress import wasyncore
from waitress.server import TcpWSGIServer, create_server

if TYPE_CHECKING:
    from directdl.runtime.service import Service

log = structlog.get_logger(__name__)


class HttpServer:
    """A background task of the gateway's Service: serves from start until stop."""

    def __init__(self, app: Callable[..., Any] | None, host: str, port: int, threads: int) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.threads = threads
        self._server: TcpWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.serving = threading.Event()

    @property
    def port(self) -> int:
        sock = self._server.socket if self._server is not None else None
        return int(sock.getsockname()[1]) if sock is not None else self.requested_port

    def start(self, service: Service[Any] | None = None) -> None:
        assert self.app is not None, "the gateway's bootstrap gives the server its app"
        server = create_server(
            self.app,
            host=self.host,
            port=self.requested_port,
            threads=self.threads,
            ident="directdl-api",
            # Clients wait up to their own timeouts; a slow client must not hold a thread.
            channel_timeout=60,
        )
        assert isinstance(server, TcpWSGIServer)  # one host and port: never several sockets
        self._server = server
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        log.info("api.listening", url=f"http://{self.host}:{self.port}/client/api")

    def _serve(self) -> None:
        assert self._server is not None
        self.serving.set()
        self._server.run()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # waitress's own way out of its loop: stop the workers, then close every channel.
        server.task_dispatcher.shutdown()
        server.close()
        wasyncore.close_all(server._map)  # type: ignore[attr-defined]  # no stub names it
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.serving.clear()
