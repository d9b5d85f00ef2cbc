"""A real user-space NFS server for tests: nfs-ganesha, NFSv4 only, on a free local port."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 30
PSEUDO = "/export"
_READY_LINE = "NFS SERVER INITIALIZED"
INSTALL = "apt-get install -y --no-install-recommends nfs-ganesha nfs-ganesha-vfs libnfs-utils"

# Protocols = 4 needs no rpcbind and no MOUNT daemon. Without Enable_RQUOTA = false
# ganesha exits at start (it cannot register rquota); without Graceless = true every
# open fails with NFS4ERR_GRACE for the first 90 s. Tests write into the export behind
# ganesha's back: with attributes cached, a directory listing misses files made within
# the same second as the previous listing.
_CONFIG = """\
NFS_CORE_PARAM {{
    Protocols = 4; NFS_Port = {port}; Bind_Addr = 127.0.0.1;
    Enable_RQUOTA = false; Enable_NLM = false;
}}
NFSV4 {{ Graceless = true; RecoveryRoot = {base}/recovery; }}
EXPORT {{
    Export_Id = 1; Path = {export}; Pseudo = {pseudo};
    Access_Type = RO; Squash = No_Root_Squash; SecType = sys;
    Attr_Expiration_Time = 0;
    FSAL {{ Name = VFS; }}
}}
"""


class GaneshaError(RuntimeError):
    """The server did not start, or died."""


class Ganesha:
    """nfs-ganesha serving `export_dir` read-only as `nfs://127.0.0.1:<port>/export/...`.

    A context manager: entry starts the server, exit stops it and removes its temp dir.
    Between the two, `stop()` and `start()` take it down and bring it back on the same
    port with the same files, and `freeze()`/`thaw()` make it stop answering.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self._base = Path(tempfile.mkdtemp(prefix="directdl-ganesha-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.export_dir.mkdir()
        (self._base / "recovery").mkdir()
        (self._base / "ganesha.conf").write_text(
            _CONFIG.format(port=self.port, base=self._base, export=self.export_dir, pseudo=PSEUDO)
        )

    @property
    def export_dir(self) -> Path:
        return self._base / "export"

    @property
    def log_path(self) -> Path:
        return self._base / "ganesha.log"

    def url_for(self, relative_path: str) -> str:
        """The project's form of a URL for a file under `export_dir`: the port in the host part."""
        return f"nfs://127.0.0.1:{self.port}{PSEUDO}/{quote(relative_path.lstrip('/'))}"

    def __enter__(self) -> Ganesha:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server and return once an NFSv4 client can list the export."""
        if self._proc is not None:
            raise GaneshaError(f"ganesha on port {self.port} is already running")
        missing = [tool for tool in ("ganesha.nfsd", "nfs-ls") if shutil.which(tool) is None]
        if missing:
            raise GaneshaError(f"{' and '.join(missing)} not found; install them with: {INSTALL}")
        atexit.register(self.close)
        starts_before = self._log_text().count(_READY_LINE)  # the log survives a restart
        with (self._base / "ganesha.out").open("ab") as out:
            self._proc = subprocess.Popen(
                [
                    "ganesha.nfsd",
                    "-F",  # foreground: ours to wait for and to kill
                    "-f", str(self._base / "ganesha.conf"),
                    "-L", str(self.log_path),
                    "-p", str(self._base / "ganesha.pid"),
                    "-N", "NIV_EVENT",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            self._wait_ready(starts_before)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._base, ignore_errors=True)
        atexit.unregister(self.close)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (a hung server)."""
        os.kill(self._running().pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._running().pid, signal.SIGCONT)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = "\n".join(self._log_text().splitlines()[-lines:])
        return text or f"(nothing in {self.log_path})"

    def _log_text(self) -> str:
        text = ""
        for path in (self._base / "ganesha.out", self.log_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return text

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise GaneshaError(f"ganesha on port {self.port} is not running")
        return self._proc

    def _wait_ready(self, starts_before: int) -> None:
        proc = self._running()
        probe = ["nfs-ls", f"nfs://127.0.0.1{PSEUDO}?version=4&nfsport={self.port}"]
        deadline = time.monotonic() + START_TIMEOUT_S
        reason = "not tried yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise GaneshaError(
                    f"ganesha exited {proc.returncode} at start on port {self.port}; "
                    f"last lines of its log:\n{self.log_tail()}"
                )
            # Another server on the port would answer the probe while ours fails to bind:
            # only trust the probe once our own log says the sockets are up.
            if self._log_text().count(_READY_LINE) <= starts_before:
                reason = "its log does not say NFS SERVER INITIALIZED yet"
                time.sleep(0.05)
                continue
            try:
                done = subprocess.run(
                    probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired:
                reason = f"nfs-ls got no answer within {PROBE_TIMEOUT_S:g} s"
            else:
                if done.returncode == 0:
                    return
                reason = (done.stdout + done.stderr).strip()
            time.sleep(0.05)
        raise GaneshaError(
            f"ganesha on port {self.port} not ready after {START_TIMEOUT_S:g} s ({reason}); "
            f"last lines of its log:\n{self.log_tail()}"
        )


def _free_port() -> int:
    """A port free for both TCP and UDP: ganesha binds both, and fails if either is taken."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise GaneshaError("no port free for both TCP and UDP on 127.0.0.1")
