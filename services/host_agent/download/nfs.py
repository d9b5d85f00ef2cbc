"""NFS downloads through libnfs's user-space client (`nfs-ls`, `nfs-cat`): no kernel mount."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import selectors
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import DEFAULT_PORTS
from directdl.destinations import DestinationDenied
from directdl.redaction import redact_url
from host_agent.download.core import (
    DownloadRequest,
    Sink,
    TerminalError,
    TransientError,
)

log = structlog.get_logger(__name__)

CHUNK = 1 << 20
# How often the pump wakes up with no data, to look at cancelled() and the read deadline.
POLL_S = 0.2
STDERR_KEEP = 4096
NFS_PORT = DEFAULT_PORTS["nfs"]

# Every failure of nfs-cat exits 10 (libnfs-utils 4.0), so the status only says "failed";
# the libnfs message on stderr says why.
# Both NFSv3 (NFS3ERR_*, MNT3ERR_*) and NFSv4 (NFS4ERR_*) names end the same way.
_NOT_FOUND = ("ERR_NOENT",)
_REFUSED = ("ERR_ACCES", "ERR_PERM", "ERR_WRONGSEC")
_NOT_A_FILE = ("ERR_ISDIR", "ERR_NOTDIR")
# nfs-ls prints one line per entry: mode, links, uid, gid, size (width 12), one space, name.
_LISTING = re.compile(r"^(?P<mode>\S+)\s+\d+\s+-?\d+\s+-?\d+\s+(?P<size>\d+) (?P<name>.*)$")


@dataclass(frozen=True)
class LibnfsUrl:
    """A project URL rewritten for libnfs: the file to read and the directory that holds it."""

    file: str
    directory: str
    name: str


def libnfs_url(url: str, address: str | None = None) -> LibnfsUrl:
    """`nfs://server[:port]/export/dir/file[?opts]` in the form libnfs-utils 4.0 reads, with
    the server replaced by `address` when given (the one the destination policy checked).

    libnfs 4.0 cannot parse `server:port` ("Can not resolv into IPv4/v6 structure"): the
    port moves to `nfsport=`. With no `version=` we ask for NFSv4: one TCP connection to
    the NFS port, no rpcbind/portmapper and no MOUNT protocol (libnfs defaults to v3,
    which needs both). libnfs 4.0 does not decode %XX in the path, so it gets the raw
    name; a name containing '?' cannot be given to it at all.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as err:
        raise _bad_url(url, "the port is not a number") from err
    if parts.scheme != "nfs" or not parts.hostname:
        raise _bad_url(url, "not an nfs://server/export/file URL")
    path = unquote(parts.path)
    directory, _, name = path.rpartition("/")
    if not directory.strip("/") or not name or name in (".", ".."):
        raise _bad_url(url, "the path does not name a file inside an export")
    if any(char in path for char in "?\0\n"):
        raise _bad_url(url, "libnfs cannot address a path containing '?' or control characters")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if port is not None and options.setdefault("nfsport", str(port)) != str(port):
        raise _bad_url(url, f"port {port} conflicts with nfsport={options['nfsport']}")
    options.setdefault("version", "4")
    server = address or parts.hostname
    host = f"[{server}]" if ":" in server else server
    user = f"{parts.username}@" if parts.username else ""
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return LibnfsUrl(
        file=f"nfs://{user}{host}{path}?{query}",
        directory=f"nfs://{user}{host}{directory}?{query}",
        name=name,
    )


def classify(url: str, status: int, stderr: str) -> TerminalError | TransientError:
    """What a failed nfs-cat or nfs-ls means, from its exit status and libnfs's message."""
    detail = " ".join(stderr.split()) or "no message"
    what = f"{url}: nfs client exited {status} ({detail})"
    if any(marker in stderr for marker in _NOT_FOUND):
        return TerminalError(DownloadFailure.NOT_FOUND, f"no such file on the NFS server: {what}")
    if any(marker in stderr for marker in _REFUSED):
        return TerminalError(DownloadFailure.NFS, f"permission denied by the NFS server: {what}")
    if any(marker in stderr for marker in _NOT_A_FILE):
        return TerminalError(DownloadFailure.NFS, f"not a regular file: {what}")
    # Unreachable, refused, name not resolved, connection lost half-way, NFS4ERR_GRACE...
    return TransientError(DownloadFailure.NFS, f"NFS server failed: {what}")


class NfsFetcher:
    """Fetcher for nfs:// URLs: `nfs-ls` for the size, then `nfs-cat` streamed into the sink.

    nfs-cat cannot start at an offset, so a partial file in the sink, a retry's or one kept
    from an earlier process, is dropped with `sink.restart()` and the whole file is read
    again. The exit status is always checked.

    Why there is no NFS resume (libnfs-utils 4.0, libnfs13, checked when resume came in):
    - `nfs-cat <file>` and `nfs-cp <src> <dst>` take no option besides their arguments, and
      nfs-cp creates its local destination afresh; no libnfs-utils tool reads from an offset.
    - The C library can (it exports nfs_pread and nfs_lseek), but the only Python binding of
      it, PyPI's `libnfs` 1.0.post4, dates from 2016: a SWIG 2.0 wrapper, source only, whose
      build needs libnfs-dev (`nfsc/libnfs.h` and the unversioned libnfs.so), not installed
      here. Built against it, it would also block a worker thread inside C with no timeout
      (it does not wrap nfs_set_timeout) and no way to cancel, where a stuck nfs-cat is
      killed. A binding of our own (ctypes) is not worth keeping for this.
    - PyPI's `nfs-rs` (a Rust client, no libnfs; 0.8.7 tried) reads at an offset
      (`File.read_at`) with an operation timeout, and did so against the test ganesha over
      NFSv4.0 and 4.1: the way to add NFS resume, as a new dependency and fetcher.
    """

    def __init__(self, nfs_cat: str = "nfs-cat", nfs_ls: str = "nfs-ls") -> None:
        self._nfs_cat = nfs_cat
        self._nfs_ls = nfs_ls

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        libnfs_url(request.url)  # a bad URL is refused before anything is resolved
        target = libnfs_url(request.url, _checked_address(request))
        _check_cancelled(request.url, cancelled)
        size = self._size(request, target)
        if sink.offset > 0:
            log.info("nfs.restart", url=request.url, dropped=sink.offset)
            sink.restart()
        sink.expect_size(size)
        received = self._stream(request, target, sink, cancelled)
        if size is not None and received != size:
            raise TransientError(
                DownloadFailure.SIZE_MISMATCH,
                f"short read from {request.url}: got {received} of {size} bytes",
            )

    def _size(self, request: DownloadRequest, target: LibnfsUrl) -> int | None:
        """The file's size from a listing of its directory (4.0 ships no `nfs-stat`).

        None when the listing cannot tell; the read then goes ahead without a size.
        """
        budget = request.timeouts.connect + request.timeouts.read
        try:
            done = subprocess.run(
                [self._nfs_ls, target.directory],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=budget,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise TransientError(
                DownloadFailure.CONNECT_TIMEOUT,
                f"{request.url}: the NFS server did not answer within {budget:g} s",
            ) from err
        except OSError as err:
            raise _no_client(self._nfs_ls, err) from err
        if done.returncode != 0:
            # nfs-ls prints a failed opendir on stdout, a failed mount on stderr.
            error = classify(request.url, done.returncode, done.stdout + done.stderr)
            if error.code is not DownloadFailure.NFS or not error.terminal:
                raise error  # no such directory, or the server is unreachable
            # A directory we may not list can still hold a file we may read.
            log.debug("nfs.size_unknown", url=request.url, reason=error.message)
            return None
        for line in done.stdout.splitlines():
            entry = _LISTING.match(line)
            if entry is None or entry["name"] != target.name:
                continue
            kind = entry["mode"][0]
            if kind == "d":
                raise TerminalError(DownloadFailure.NFS, f"{request.url} is a directory")
            # A symbolic link lists its own size; nfs-cat reads its target.
            return int(entry["size"]) if kind == "-" else None
        # Not in the listing. A server's directory cache can lag behind a file that a
        # lookup finds (ganesha does), so nfs-cat's open has the last word on NOT_FOUND.
        log.debug("nfs.size_unknown", url=request.url, reason=f"{target.name} not listed")
        return None

    def _stream(
        self,
        request: DownloadRequest,
        target: LibnfsUrl,
        sink: Sink,
        cancelled: Callable[[], bool],
    ) -> int:
        """Pump nfs-cat's stdout into the sink; return the byte count once it exited 0."""
        try:
            proc = subprocess.Popen(
                [self._nfs_cat, target.file],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as err:
            raise _no_client(self._nfs_cat, err) from err
        try:
            assert proc.stdout is not None and proc.stderr is not None
            _widen_pipe(proc.stdout.fileno())
            received, stderr = _pump(proc, request, sink, cancelled)
            # stdout is closed: nfs-cat is exiting. A hang here is one more stall.
            try:
                status = proc.wait(timeout=request.timeouts.read)
            except subprocess.TimeoutExpired as err:
                raise _stalled(request) from err
            # It has exited, so this read ends; it holds the reason for a failure.
            stderr += proc.stderr.read(STDERR_KEEP)
        finally:
            _reap(proc)
        if status != 0:
            raise classify(request.url, status, stderr.decode(errors="replace"))
        return received


def _pump(
    proc: subprocess.Popen[bytes],
    request: DownloadRequest,
    sink: Sink,
    cancelled: Callable[[], bool],
) -> tuple[int, bytearray]:
    """Read stdout and stderr until stdout closes, enforcing the read timeout between bytes."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.fileno(), proc.stderr.fileno()
    pending = bytearray()
    stderr = bytearray()
    received = 0
    deadline = time.monotonic() + request.timeouts.read
    with selectors.DefaultSelector() as selector:
        selector.register(out, selectors.EVENT_READ)
        selector.register(err, selectors.EVENT_READ)
        while out in selector.get_map():
            _check_cancelled(request.url, cancelled)
            now = time.monotonic()
            if now >= deadline:
                raise _stalled(request)
            for key, _ in selector.select(min(POLL_S, deadline - now)):
                data = os.read(key.fd, CHUNK)
                if not data:
                    selector.unregister(key.fd)
                elif key.fd == err:
                    stderr = (stderr + data)[-STDERR_KEEP:]
                else:
                    deadline = time.monotonic() + request.timeouts.read
                    pending += data
                    while len(pending) >= CHUNK:
                        sink.write(bytes(pending[:CHUNK]))
                        del pending[:CHUNK]
                        received += CHUNK
    if pending:
        sink.write(bytes(pending))
        received += len(pending)
    return received, stderr


def _stalled(request: DownloadRequest) -> TransientError:
    # libnfs 4.0 has no RPC timeout: against a server that stops answering, or a file that
    # shrank (nfs-cat then loops on zero-byte reads), nfs-cat would wait forever.
    return TransientError(
        DownloadFailure.READ_TIMEOUT,
        f"no data from {request.url} for {request.timeouts.read:g} s",
    )


def _checked_address(request: DownloadRequest) -> str:
    """The server's address, resolved once and checked by the destination policy: libnfs is
    handed this address, so that a second DNS answer cannot send it elsewhere."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    try:
        return request.policy.resolve(host, parts.port or NFS_PORT)[0]
    except DestinationDenied as err:
        message = f"{redact_url(request.url)} is refused by the download destination policy: {err}"
        raise TerminalError(DownloadFailure.DESTINATION_DENIED, message) from None
    except (socket.gaierror, IndexError) as err:
        message = f"NFS server {host} of {redact_url(request.url)} does not resolve: {err}"
        raise TransientError(DownloadFailure.NFS, message) from err


def _check_cancelled(url: str, cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise TerminalError(DownloadFailure.CANCELLED, f"download of {url} cancelled")


def _widen_pipe(fd: int) -> None:
    # A 1 MiB pipe lets nfs-cat hand over a whole read at once (Linux; 64 KiB otherwise).
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _no_client(tool: str, err: OSError) -> TerminalError:
    return TerminalError(
        DownloadFailure.INTERNAL, f"cannot run {tool} ({err.strerror}); is libnfs-utils installed?"
    )


def _bad_url(url: str, why: str) -> TerminalError:
    return TerminalError(DownloadFailure.NFS, f"bad NFS URL {url}: {why}")
