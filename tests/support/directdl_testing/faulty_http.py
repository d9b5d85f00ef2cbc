"""A raw-socket HTTP/1.1 server that misbehaves on cue: drops, stalls, error codes, no Range."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass(frozen=True)
class SeenRequest:
    """One request as received; header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def if_range(self) -> str | None:
        return self.headers.get("if-range")


class FaultyServer:
    """Serves `content` at every path on 127.0.0.1:<free port>, one request per connection.

    It honours `Range: bytes=N-` (206 + Content-Range, 416 past the end) unless `If-Range`
    differs from `etag`. A fault set with `drop_after`, `stall_after_headers` or `status`
    applies to the next `times` requests; `ignore_range` makes every answer a full 200.
    `content` and `etag` may be replaced between requests (a new version of the file).
    """

    def __init__(self, content: bytes = b"", etag: str = '"v1"') -> None:
        self.content = content
        self.etag = etag
        self.requests: list[SeenRequest] = []
        self._fault: tuple[str, float] = ("", 0)
        self._fault_left = 0
        self._ignore_range = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file"

    def drop_after(self, n_bytes: int, times: int = 1) -> None:
        """Send the headers (full Content-Length) and `n_bytes` of body, then close."""
        self._set(("drop", n_bytes), times)

    def stall_after_headers(self, seconds: float, times: int = 1) -> None:
        """Send the headers, then nothing for `seconds`, then close."""
        self._set(("stall", seconds), times)

    def status(self, code: int, times: int = 1) -> None:
        """Answer `code` with a short body."""
        self._set(("status", code), times)

    def ignore_range(self, ignore: bool = True) -> None:
        self._ignore_range = ignore

    def _set(self, fault: tuple[str, float], times: int) -> None:
        with self._lock:
            self._fault, self._fault_left = fault, times

    def __enter__(self) -> FaultyServer:
        self._listener.settimeout(0.1)
        thread = threading.Thread(target=self._accept_loop, name="faulty-http", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            seen = _read_request(conn)
            if seen is None:
                return
            with self._lock:
                self.requests.append(seen)
                fault = self._fault if self._fault_left > 0 else ("", 0)
                self._fault_left = max(0, self._fault_left - 1)
                content, etag = self.content, self.etag
            kind, arg = fault
            if kind == "status":
                code = int(arg)
                body = f"{code} {HTTPStatus(code).phrase}\n".encode()
                conn.sendall(_head(code, {"Content-Length": str(len(body))}) + body)
                return
            code, headers, body = self._answer(seen, content, etag)
            conn.sendall(_head(code, headers))
            if kind == "stall":
                self._stopping.wait(arg)
            elif kind == "drop":
                conn.sendall(body[: int(arg)])
            elif seen.method != "HEAD":
                conn.sendall(body)

    def _answer(
        self, seen: SeenRequest, content: bytes, etag: str
    ) -> tuple[int, dict[str, str], bytes]:
        size = len(content)
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        match = _RANGE.match(seen.range or "")
        use_range = match and not self._ignore_range and seen.if_range in (None, etag)
        if not match or not use_range:
            return 200, {**headers, "Content-Length": str(size)}, content
        start = int(match.group(1))
        if start >= size:
            return 416, {**headers, "Content-Range": f"bytes */{size}", "Content-Length": "0"}, b""
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        headers["Content-Length"] = str(size - start)
        return 206, headers, content[start:]


def _read_request(conn: socket.socket) -> SeenRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return SeenRequest(method, path, headers)


def _head(code: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
