"""`make run`: the Procfile's processes under honcho, as compose runs its services, each as its
own broker user, with compose's sample template server, one short line per event; Ctrl-C stops
all."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

from directdl.bus.connection import broker_user
from directdl.bus.topology import Topology
from directdl.contracts.base import EXCHANGE
from directdl.runtime.accounts import (
    ADMIN,
    ProvisioningError,
    account_url,
    deployment,
    provision,
)
from directdl.runtime.logging import FORMAT_VARIABLE, short_line
from directdl.runtime.provision import SECRETS_KEY_VARIABLE
from directdl.runtime.settings import DEFAULT_AMQP_URL

# `make run` runs from a source checkout (an editable install): this file is
# libs/directdl/launcher.py, and what it runs is beside it in the repository.
ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
NGINX_CONF = ROOT / "deploy/nginx/nginx.conf"  # compose's templates server
MAKE_SAMPLE = ROOT / "deploy/templates/make_sample.py"  # compose's template-init
# The host ports compose publishes its templates server on (not 8080, CloudStack's API port,
# which the gateway serves), and the names its certificate is for: compose's host name, and
# those the local server is reached by.
SAMPLE_PORTS = (8088, 8443)
SAMPLE_NAMES = ("templates", "localhost", "127.0.0.1")
COMPOSE_ROOT = "/srv/templates"  # where compose mounts the templates volume
# The gateway's key for the API keys' secrets, when the environment has none: made at the
# first run and kept, so that the secrets stored then stay readable at the next.
SECRETS_KEY_FILE = Path("api/secrets.key")
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


class LaunchError(RuntimeError):
    """`make run` cannot start: the message says what is missing or wrong."""


def read_procfile(path: Path = PROCFILE) -> dict[str, list[str]]:
    """Each process's name and its command line split as the shell splits it, unexpanded."""
    return {name: shlex.split(command) for name, command in procfile_commands(path).items()}


def assignments(argv: list[str]) -> dict[str, str]:
    """The `NAME=value` words that open a command line: the environment it runs with."""
    env = {}
    for word in argv:
        match = ASSIGNMENT.match(word)
        if match is None:
            break
        env[match[1]] = match[2]
    return env


def command_of(argv: list[str]) -> list[str]:
    """The command line without the assignments that open it."""
    return argv[len(assignments(argv)) :]


def amqp_variable(user: str) -> str:
    """The variable the Procfile reads a broker user's URL from: `host-agent-host-1` ->
    `HOST_AGENT_HOST_1_AMQP_URL`."""
    return re.sub(r"[^A-Z0-9]", "_", user.upper()) + "_AMQP_URL"


def provision_users(base_url: str, hosts: list[str]) -> dict[str, str]:
    """Every process's own broker user, created on the local broker as compose's
    definitions.json creates them; returns each user's AMQP URL. The user of `base_url`
    keeps administering the vhost, so that the CLI and the README's pika example work."""
    topology = Topology(
        os.environ.get("DIRECTDL_EXCHANGE", EXCHANGE), os.environ.get("DIRECTDL_QUEUE_PREFIX", "")
    )
    accounts = [a for a in deployment(hosts, topology) if a.user != ADMIN]
    vhost = unquote(urlsplit(base_url).path[1:]) or "/"
    administrator = {"user": broker_user(base_url), "vhost": vhost} | {
        "configure": ".*",
        "write": ".*",
        "read": ".*",
    }
    provision(accounts, vhost, extra={"permissions": [administrator]})
    return {a.user: account_url(base_url, a) for a in accounts}


def nginx_conf(conf: str, data_dir: Path, *, as_root: bool) -> str:
    """compose's nginx.conf for a local nginx: loopback ports, the data directory for the
    volume, and a pid file and temporary files nginx can write there."""
    http, https = SAMPLE_PORTS
    temp = "".join(
        f'    {kind}_temp_path "{data_dir}/nginx/temp/{kind}";\n'
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Workers run as whoever runs `make run`, as they must when that is not root: as root,
    # nginx's default (nobody) could not read a checkout under /root or a 0700 temp dir.
    user = "user root;" if as_root else ""
    rewrites = [
        (r"^user \S+;\n", f"{user}\n" if user else ""),
        (r"^pid \S+;$", f'pid "{data_dir}/nginx/nginx.pid";'),
        (r"^http \{\n", f"http {{\n{temp}"),
        (r"^(\s+)listen 80;$", rf"\g<1>listen 127.0.0.1:{http};"),
        (r"^(\s+)listen 443 ssl;$", rf"\g<1>listen 127.0.0.1:{https} ssl;"),
    ]
    for pattern, replacement in rewrites:
        conf, count = re.subn(pattern, replacement, conf, flags=re.M)
        if count != 1:
            raise LaunchError(f"{NGINX_CONF} has no line that matches {pattern!r}")
    if any(c in str(data_dir) for c in '"$;{}\\'):
        raise LaunchError(f"nginx cannot be given the data directory {data_dir}")
    volume = re.escape(COMPOSE_ROOT)
    conf = re.sub(rf"{volume}(/[^;\s]*)?;", lambda m: f'"{data_dir}/templates{m[1] or ""}";', conf)
    return f"# Written by `make run` (libs/directdl/launcher.py) from {NGINX_CONF}.\n{conf}"


def serve_sample(data_dir: Path) -> bool:
    """Write the sample template and the local nginx config; False when there is no nginx."""
    folder = data_dir / "templates"
    subprocess.run(
        [sys.executable, str(MAKE_SAMPLE), str(folder), *SAMPLE_NAMES],
        check=True,
        stdout=sys.stderr,
    )
    if shutil.which("nginx") is None:
        print("no nginx, so no sample template server (`make deps` installs it)", file=sys.stderr)
        return False
    (data_dir / "nginx" / "temp").mkdir(parents=True, exist_ok=True)
    conf = nginx_conf(NGINX_CONF.read_text(), data_dir, as_root=os.geteuid() == 0)
    (data_dir / "nginx" / "nginx.conf").write_text(conf)
    http, https = SAMPLE_PORTS
    print(
        f"sample template at http://127.0.0.1:{http}/sample.qcow2 and "
        f"https://127.0.0.1:{https}/sample.qcow2, its digest in {folder / 'www/SHA256SUMS'}; "
        f"its server's certificate is {folder / 'www/templates.pem'}",
        file=sys.stderr,
    )
    return True


def secrets_key(data_dir: Path, environ: Mapping[str, str]) -> str:
    """The gateway's API_SECRETS_KEY: the environment's if it has one, else the key in the data
    directory, which the first run generates (readable by its owner only)."""
    given = environ.get(SECRETS_KEY_VARIABLE)
    if given:
        return given
    path = data_dir / SECRETS_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Exclusive: a key already there encrypts secrets already stored, and stays.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
    else:
        key = Fernet.generate_key().decode()
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
    try:
        Fernet(key)
    except ValueError as err:
        raise LaunchError(
            f"{path} holds no Fernet key: set {SECRETS_KEY_VARIABLE}, or delete the file "
            "(the API keys' secrets stored under it become unreadable)"
        ) from err
    return key


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """Each process's name and its command line as written, for the shell honcho runs it in.
    Lines that are not `name: command` (comments) are skipped, as honcho skips them."""
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            commands[match[1]] = match[2]
    return commands


def main() -> int:
    if importlib.util.find_spec("honcho") is None:
        print("no honcho: `make install` installs it with the dev dependencies", file=sys.stderr)
        return 1
    processes, commands = read_procfile(), procfile_commands()
    hosts = [h for argv in processes.values() if (h := assignments(argv).get("HOST_AGENT_HOST_ID"))]
    base_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    try:
        urls = provision_users(base_url, hosts)
    except (ProvisioningError, OSError) as err:
        print(
            f"cannot create the services' broker users on the local broker: {err}. "
            "`make run` administers the broker at AMQP_URL with rabbitmqctl, as root "
            "(`make deps` installs and starts one).",
            file=sys.stderr,
        )
        return 1
    data_dir = Path(os.environ.get("DIRECTDL_DATA_DIR", "var")).resolve()
    try:
        nginx = serve_sample(data_dir)
    except (LaunchError, OSError, subprocess.CalledProcessError) as err:
        print(f"cannot write the sample template: {err}", file=sys.stderr)
        return 1
    try:
        key = secrets_key(data_dir, os.environ)
    except (LaunchError, OSError) as err:
        print(f"cannot keep the API gateway's secrets key: {err}", file=sys.stderr)
        return 1
    names = [n for n, argv in processes.items() if nginx or command_of(argv)[:1] != ["nginx"]]
    env = os.environ | {
        # The Procfile's `python` is this virtualenv's.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "DIRECTDL_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",  # honcho relays each line as it is written
        SECRETS_KEY_VARIABLE: key,
    }
    env |= {amqp_variable(user): url for user, url in urls.items()}
    # Asked for a format, the user gets every line as the services write it; else they write
    # JSON, and the launcher prints each line short (see `ShortLines`).
    raw = bool(os.environ.get(FORMAT_VARIABLE))
    env.setdefault(FORMAT_VARIABLE, "json")
    return supervise({n: commands[n] for n in names}, env, raw=raw)


def supervise(commands: dict[str, str], env: dict[str, str], *, raw: bool) -> int:
    """Run every command under honcho until one exits or Ctrl-C/SIGTERM: then honcho stops
    them all (SIGTERM, then SIGKILL after 5 s; ack after commit makes that safe)."""
    # A dev dependency, as honcho is: `main` checked that it is there.
    from honcho.manager import Manager  # type: ignore[import-untyped]
    from honcho.printer import Printer  # type: ignore[import-untyped]

    manager = Manager(printer=ShortLines(Printer(sys.stdout), raw=raw))
    for name, command in commands.items():
        manager.add_process(name, command, env=env)
    manager.loop()
    return int(manager.returncode or 0)


class ShortLines:
    """honcho's printer, fed each JSON log line as `short_line` renders it: its prefix gives
    the time and the process, so the line says only the event and its own fields."""

    def __init__(self, printer: Any, *, raw: bool) -> None:
        self.printer = printer
        self.raw = raw
        self.colour = bool(getattr(printer.output, "isatty", lambda: False)())

    @property
    def width(self) -> int:
        return int(self.printer.width)

    @width.setter
    def width(self, value: int) -> None:
        self.printer.width = value  # honcho widens the prefix to the longest process name

    def write(self, message: Any) -> None:
        data = message.data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if not self.raw:
            text = "\n".join(self.render(line) for line in text.splitlines())
        self.printer.write(message._replace(data=text))

    def render(self, line: str) -> str:
        """A JSON log line, short; any other line (nginx's, a traceback) as it is."""
        try:
            event = json.loads(line)
        except ValueError:
            return line
        if not isinstance(event, dict) or "event" not in event:
            return line
        return short_line(event, colour=self.colour)


if __name__ == "__main__":
    raise SystemExit(main())
