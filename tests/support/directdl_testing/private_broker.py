"""A throwaway RabbitMQ node for tests that stop or restart the broker."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from directdl_testing.broker import broker_answers

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CTL_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 30


class PrivateBrokerError(RuntimeError):
    """The private node did not start, or a command against it failed."""


class PrivateBroker:
    """A RabbitMQ node of its own: own name, ports, data and log dirs, all in one temp dir.

    The shared broker on 5672 is never touched, so a test may stop and restart this one.
    Use it as a context manager: the node is started on entry, then stopped and its
    directory removed on exit. `file_limit` raises the node's open-files limit (as far as
    the hard limit allows) for thousands of connections; a node otherwise gets 1024.
    """

    def __init__(self, file_limit: int | None = None) -> None:
        self.node = f"directdl-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        self.file_limit = file_limit
        self._dist_port = _free_port()
        self._base: Path | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the node and return once it accepts AMQP connections."""
        if self._base is not None:
            raise PrivateBrokerError(f"{self.node} is already started")
        self._base = Path(tempfile.mkdtemp(prefix="directdl-rabbit-"))
        # A detached node outlives the test process; never leave one behind.
        atexit.register(self.stop)
        try:
            self._prepare_base_dir(self._base, self.file_limit)
            self._run("rabbitmq-server", "-detached", timeout_s=CTL_TIMEOUT_S)
            self._wait_for_amqp(f"{self.node} did not start")
        except BaseException:
            self.stop()
            raise

    def stop_app(self) -> None:
        """Stop the RabbitMQ application; the Erlang node keeps running (a broker outage)."""
        self._ctl("stop_app")

    def start_app(self) -> None:
        """Start the application again and return once AMQP answers."""
        self._ctl("start_app")
        self._wait_for_amqp(f"{self.node} did not come back after start_app")

    def join(self, seed: str) -> None:
        """Join the cluster of the node named `seed`, then serve AMQP again. Both must share
        an Erlang cookie: as root, Debian's scripts give every node the rabbitmq user's."""
        self._ctl("stop_app")
        self._run("rabbitmqctl", "-n", self.node, "join_cluster", seed, timeout_s=CTL_TIMEOUT_S)
        self.start_app()

    def ctl(self, *args: str) -> str:
        """What `rabbitmqctl -n <node> args...` printed; an error if it failed."""
        return self._run("rabbitmqctl", "-n", self.node, *args, timeout_s=CTL_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the node, kill whatever is left of it, and remove its directory."""
        base = self._base
        if base is None:
            return
        try:
            self._run("rabbitmqctl", "-n", self.node, "stop", timeout_s=STOP_TIMEOUT_S)
            stopped = True
        except (PrivateBrokerError, subprocess.TimeoutExpired):
            stopped = False  # not running, or hung: what is left gets killed below
        try:
            # `stop` returns once the node agreed to halt; the process exits a moment later.
            if not (stopped and _wait_until(lambda: not self._node_pids(base), STOP_TIMEOUT_S)):
                for pid in self._node_pids(base):
                    _kill(pid)
                _wait_until(lambda: not self._node_pids(base), 10.0)
        finally:
            shutil.rmtree(base, ignore_errors=True)
            self._base = None
            atexit.unregister(self.stop)

    @property
    def pid(self) -> int:
        """The node's operating-system process."""
        pid = _read_pid(self._started_base() / "node.pid")
        if pid is None:
            raise PrivateBrokerError(f"{self.node} wrote no pid file")
        return pid

    def open_files_limit(self) -> int:
        """The open-files limit the running node got."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise PrivateBrokerError(f"no open-files limit in /proc/{self.pid}/limits")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the node's log, for error messages."""
        if self._base is None:
            return "(node not started)"
        log = self._base / "log" / f"{self.node}.log"
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            tail = ""
        # A node that dies before its logging is set up (e.g. a port already taken) says
        # why only on the stdout it no longer has when detached, and in its crash dump.
        slogan = _crash_slogan(self._base / "erl_crash.dump")
        return "\n".join(part for part in (tail, slogan) if part) or f"(nothing in {log})"

    def _env(self) -> dict[str, str]:
        base = self._started_base()
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"),
            # 3.10 adds ".conf" when the suffix is missing, and silently runs with no
            # config at all when the file does not exist; either way the system
            # rabbitmq.conf (which claims 5672) is never read.
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            # The start script cd's into the system data dir; keep crash dumps out of it.
            "ERL_CRASH_DUMP": str(base / "erl_crash.dump"),
            **self._limit_env(base),
        }

    def _limit_env(self, base: Path) -> dict[str, str]:
        if self.file_limit is None:
            return {}
        # Sourced by the start script after Debian's wrapper has switched user, which
        # resets the soft open-files limit: the one place left to raise it.
        return {"RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf")}

    def _started_base(self) -> Path:
        if self._base is None:
            raise PrivateBrokerError(f"{self.node} is not started")
        return self._base

    @staticmethod
    def _prepare_base_dir(base: Path, file_limit: int | None) -> None:
        for sub in ("mnesia", "log"):
            (base / sub).mkdir()
        (base / "rabbitmq.conf").write_text("# Private test node: settings come from the env.\n")
        (base / "enabled_plugins").write_text("[].\n")
        if file_limit is not None:
            # In place of the system's env file, which it still sources (the start
            # script's defaults name its directory SYS_PREFIX).
            system = "${SYS_PREFIX}/etc/rabbitmq/rabbitmq-env.conf"
            (base / "rabbitmq-env.conf").write_text(
                f'[ -f "{system}" ] && . "{system}"\n'
                f'ulimit -n {file_limit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"\n'
            )
        # As root, Debian's wrapper runs the node as the rabbitmq user (through su, which
        # keeps the environment but sets HOME, so node and CLI share its Erlang cookie).
        # That user must be able to write here.
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("rabbitmq")
            except KeyError:
                return
            for path in (base, *base.rglob("*")):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def _ctl(self, command: str) -> None:
        self._run("rabbitmqctl", "-n", self.node, command, timeout_s=CTL_TIMEOUT_S)

    def _run(self, *argv: str, timeout_s: float) -> str:
        done = subprocess.run(
            argv, env=self._env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise PrivateBrokerError(
                f"`{' '.join(argv)}` exited {done.returncode} for {self.node}:\n{output}"
            )
        return done.stdout

    def _wait_for_amqp(self, failure: str) -> None:
        base = self._started_base()
        deadline = time.monotonic() + START_TIMEOUT_S
        reason: str | None = "not tried yet"
        while time.monotonic() < deadline:
            reason = broker_answers(self.url, timeout_s=2.0)
            if reason is None:
                return
            # `-detached` returns once the node's process exists; if it is gone, it crashed.
            if not self._node_pids(base):
                reason = "the node's process exited"
                break
            time.sleep(0.25)
        raise PrivateBrokerError(
            f"{failure} on port {self.port} ({reason}); last lines of its log:\n{self.log_tail()}"
        )

    @staticmethod
    def _node_pids(base: Path) -> list[int]:
        """Live processes of this node: the pid file, else anything started with its env."""
        pid = _read_pid(base / "node.pid")
        if pid is not None:
            return [pid] if _alive(pid) else []
        marker = f"RABBITMQ_MNESIA_BASE={base / 'mnesia'}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
                comm = (proc / "comm").read_text().strip()
            except OSError:
                continue
            # epmd may have been started by this node, but other nodes rely on it.
            if marker in environ and comm != "epmd" and _alive(int(proc.name)):
                found.append(int(proc.name))
        return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _crash_slogan(dump: Path) -> str:
    try:
        with dump.open(errors="replace") as lines:
            for _, line in zip(range(5), lines, strict=False):
                if line.startswith("Slogan:"):
                    return f"erl_crash.dump {line.strip()}"
    except OSError:
        pass
    return ""


def _alive(pid: int) -> bool:
    # A node that has exited can linger as a zombie until its parent (init) reaps it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
