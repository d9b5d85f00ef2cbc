"""compose.yaml, the Dockerfile and deploy/ checked statically, without a Docker engine."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic import AliasChoices
from sqlalchemy.engine import make_url

from certificate.bootstrap import NAME as CERTIFICATE
from certificate.config import CertificateSettings
from directdl import launcher
from directdl.bus.tables import roles
from directdl.bus.topology import Topology
from directdl.runtime.live_settings import SHARED_QUEUE
from directdl.runtime.settings import ServiceSettings
from host_agent.config import HostAgentSettings
from registration.bootstrap import NAME as REGISTRATION
from registration.config import RegistrationSettings
from sync_scheduler.bootstrap import NAME as SYNC_SCHEDULER
from sync_scheduler.config import SchedulerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose-spec.schema.json")
SETTINGS: dict[str, type[ServiceSettings]] = {
    "registration": RegistrationSettings,
    "certificate": CertificateSettings,
    "sync_scheduler": SchedulerSettings,
    "host_agent": HostAgentSettings,
}
CENTRAL = {
    "registration": REGISTRATION,
    "certificate": CERTIFICATE,
    "sync_scheduler": SYNC_SCHEDULER,
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


COMPOSE: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DEFINITIONS: dict[str, Any] = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())


def module_of(service: dict[str, Any]) -> str | None:
    """`python -m <module>` -> module; None for services that run something else."""
    command = service.get("command", [])
    return command[2] if command[:2] == ["python", "-m"] else None


PYTHON = {name: s for name, s in SERVICES.items() if module_of(s) in SETTINGS}


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def env_names(cls: type[ServiceSettings]) -> set[str]:
    """The variables pydantic-settings reads: the alias when there is one, else prefix + name."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def settings_of(name: str) -> ServiceSettings:
    """The service's settings as it would read them from its compose environment alone."""
    cls = SETTINGS[module_of(SERVICES[name]) or ""]
    with pytest.MonkeyPatch.context() as patch:
        for variable in os.environ:
            if variable.upper() in env_names(cls):
                patch.delenv(variable)
        for key, value in env_of(SERVICES[name]).items():
            patch.setenv(key, value)
        return cls()


def identity(name: str) -> str:
    """The service's name on the bus: its queues are `<identity>.<purpose>`."""
    settings = settings_of(name)
    if isinstance(settings, HostAgentSettings):
        return settings.service_name
    return CENTRAL[module_of(SERVICES[name]) or ""]


def test_compose_is_valid_against_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    # It declares draft 2019-09 by an http:// URI that jsonschema does not recognise (it knows
    # the https:// one, and would fall back to the latest draft), so the class is named here.
    assert "json-schema.org/draft/2019-09/schema" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert not errors
    assert "version" not in COMPOSE
    # The validator does reject what the spec does not know, so the pass above means something.
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["registration"]["healthcheck"]["tset"] = ["CMD", "true"]
    assert not validator.is_valid(broken)


def test_python_services_set_only_variables_their_settings_read() -> None:
    assert PYTHON
    for name, service in PYTHON.items():
        cls = SETTINGS[module_of(service) or ""]
        unknown = {key for key in env_of(service) if key.upper() not in env_names(cls)}
        assert not unknown, f"{name} sets {sorted(unknown)}, which {cls.__name__} never reads"
        settings_of(name)  # and the values validate


def test_healthchecks_ask_readyz_on_the_port_the_service_listens_on() -> None:
    for name in PYTHON:
        settings = settings_of(name)
        assert settings.health_host == "0.0.0.0", f"{name}: other containers could not probe it"
        test = SERVICES[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        urls = [urlsplit(url) for url in re.findall(r"https?://[^'\"\s]+", " ".join(test))]
        assert len(urls) == 1, f"{name}: {test}"
        assert urls[0].hostname == "127.0.0.1"
        assert (urls[0].port, urls[0].path) == (settings.health_port, "/readyz"), name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") != "no":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_builds_and_mounted_files_exist() -> None:
    named = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        if "build" in service:
            build = service["build"]
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (context / (dockerfile or "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source, _target, *mode = volume.split(":")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                if Path(source).parts[0] == "deploy":
                    assert (ROOT / source).is_file() and mode == ["ro"], f"{name}: {volume}"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"
    init_sql = SERVICES["postgres"]["volumes"][0]
    assert init_sql.startswith("./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/")


def test_services_wait_for_healthy_infrastructure() -> None:
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if dependency in ("rabbitmq", "postgres"):
                assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"
    for name, service in PYTHON.items():
        needs = set(service["depends_on"])
        assert "rabbitmq" in needs, name
        assert ("postgres" in needs) == (module_of(service) in CENTRAL), name
    assert SERVICES["templates"]["depends_on"] == {
        "template-init": {"condition": "service_completed_successfully"}
    }


def test_launcher_and_compose_run_the_same_processes() -> None:
    """`make run`'s Procfile runs compose's long-running services, named as in compose: the
    same commands, settings compose gives them, and each as the broker user it is in compose;
    the sample is written and served with compose's own files."""
    procfile = launcher.read_procfile()
    assert set(procfile) == {
        name
        for name, service in SERVICES.items()
        if service.get("restart") != "no" and name not in ("rabbitmq", "postgres")
    }
    for name, argv in procfile.items():
        env, command = launcher.assignments(argv), launcher.command_of(argv)
        if name not in PYTHON:
            assert command[0] == "nginx" and SERVICES[name]["image"].startswith("nginx:"), name
            continue
        assert command == SERVICES[name]["command"], name
        assert env.pop("AMQP_URL") == f"${launcher.amqp_variable(identity(name))}", name
        assert env.items() <= env_of(SERVICES[name]).items(), f"{name}: {env}"
    mounts = {
        volume.split(":")[0]: volume.split(":")[1]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
    }
    assert mounts["./" + str(launcher.NGINX_CONF.relative_to(ROOT))] == "/etc/nginx/nginx.conf"
    sample = "./" + str(launcher.MAKE_SAMPLE.relative_to(ROOT))
    assert mounts[sample] == SERVICES["template-init"]["command"][1]
    assert launcher.COMPOSE_ROOT in SERVICES["template-init"]["command"]


def test_make_run_serves_the_sample_with_compose_nginx_config_on_loopback_ports() -> None:
    conf = launcher.nginx_conf(launcher.NGINX_CONF.read_text(), Path("/data dir"), as_root=False)
    directives = [line for line in conf.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if launcher.COMPOSE_ROOT in line]
    assert re.findall(r"^\s*listen (.+);$", conf, re.M) == [
        f"127.0.0.1:{launcher.SAMPLE_PORTS[0]}",
        f"127.0.0.1:{launcher.SAMPLE_PORTS[1]} ssl",
    ]
    assert 'root "/data dir/templates/www";' in conf
    assert 'ssl_certificate_key "/data dir/templates/tls/templates.key";' in conf
    assert 'pid "/data dir/nginx/nginx.pid";' in conf
    assert 'client_body_temp_path "/data dir/nginx/temp/client_body";' in conf
    assert not re.search(r"^user ", conf, re.M)
    as_root = launcher.nginx_conf(launcher.NGINX_CONF.read_text(), Path("/d"), as_root=True)
    assert re.findall(r"^user .*$", as_root, re.M) == ["user root;"]
    # compose publishes its server on the same host ports.
    published = [p.rsplit(":", 2)[1:] for p in SERVICES["templates"]["ports"]]
    assert [int(host) for host, _ in published] == list(launcher.SAMPLE_PORTS)


def test_each_host_agent_keeps_its_pool_and_trust_store_on_volumes_of_its_own() -> None:
    agents = [name for name, s in PYTHON.items() if module_of(s) == "host_agent"]
    assert len(agents) == 2
    seen: set[str] = set()
    hosts = set()
    for name in agents:
        settings = settings_of(name)
        assert isinstance(settings, HostAgentSettings)
        hosts.add(settings.host_id)
        mounts = dict(v.split(":")[1::-1] for v in SERVICES[name]["volumes"])
        for path in (settings.pool_path, settings.truststore_path):
            assert path is not None, name
            target = next(t for t in mounts if path.is_relative_to(t))
            assert mounts[target] in COMPOSE["volumes"] and mounts[target] not in seen, name
        seen.update(mounts.values())
    assert len(hosts) == len(agents)


def test_each_central_service_owns_a_postgres_database_and_role() -> None:
    sql = (ROOT / "deploy/postgres/init.sql").read_text()
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)';", sql))
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql))
    used = []
    for name, service in PYTHON.items():
        url = settings_of(name).database_url
        if module_of(service) not in CENTRAL:
            assert url is None, f"{name} keeps its embedded database"
            continue
        assert url is not None
        parsed = make_url(url)
        assert (parsed.drivername, parsed.host) == ("postgresql+psycopg", "postgres"), name
        assert (
            parsed.database is not None
            and parsed.database in owners
            and owners[parsed.database] == parsed.username
        ), name
        assert roles[parsed.username] == parsed.password, f"{name}: password differs from init.sql"
        assert f"REVOKE ALL ON DATABASE {parsed.database} FROM PUBLIC;" in sql
        used.append(parsed.database)
    assert sorted(used) == sorted(set(used)) == sorted(owners)


def rabbit_user(name: str) -> dict[str, Any]:
    return next(u for u in DEFINITIONS["users"] if u["name"] == name)


def permissions(user: str) -> dict[str, str]:
    return next(p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == "/")


def allows(regex: str, name: str) -> bool:
    # RabbitMQ searches (re:run), it does not match whole names; hence every regex is anchored.
    return re.search(regex, name) is not None


def test_rabbitmq_has_a_user_per_service_and_no_guest() -> None:
    users = {u["name"] for u in DEFINITIONS["users"]}
    assert users == {"admin", "cli", *(identity(name) for name in PYTHON)}
    assert rabbit_user("admin")["tags"] == ["administrator"]
    for user in DEFINITIONS["users"]:
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert "password" not in user
    for grant in DEFINITIONS["permissions"]:
        if grant["user"] != "admin":
            for regex in (grant["configure"], grant["write"], grant["read"]):
                assert regex.startswith("^") and regex.endswith("$"), grant
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf.splitlines()


def test_each_service_connects_as_its_own_user_with_its_password() -> None:
    users = []
    for name in PYTHON:
        url = urlsplit(settings_of(name).amqp_url)
        assert (url.hostname, url.username) == ("rabbitmq", identity(name)), name
        salted = base64.b64decode(rabbit_user(identity(name))["password_hash"])
        assert hashlib.sha256(salted[:4] + (url.password or "").encode()).digest() == salted[4:]
        users.append(url.username)
    assert len(users) == len(set(users))


def test_service_permissions_cover_what_each_declares_binds_publishes_and_consumes() -> None:
    for name in PYTHON:
        settings, service = settings_of(name), identity(name)
        topology = Topology(settings.exchange, settings.queue_prefix)
        exchanges = [topology.exchange, topology.dead_letter_exchange]
        purposes = (
            ["commands"] if isinstance(settings, HostAgentSettings) else ["commands", "events"]
        )
        consumed = [topology.queue(service, purpose) for purpose in purposes]
        if not isinstance(settings, HostAgentSettings):
            consumed.append(topology.queue_prefix + SHARED_QUEUE)
        dead = [topology.dead_letter_queue(service)]
        if not isinstance(settings, HostAgentSettings):
            dead.append(f"{topology.queue_prefix}{SHARED_QUEUE}.dead")
        grant = permissions(service)
        expected = {
            # exchange.declare and queue.declare
            "configure": [*exchanges, *consumed, *dead],
            # publish (events, dead-letter copies, replies through the default exchange),
            # queue.declare with a dead-letter exchange, and the destination of queue.bind
            "write": [*exchanges, "amq.default", *consumed, *dead],
            # the source of queue.bind; basic.consume and queue.declare with a DLX
            "read": [*exchanges, *consumed],
        }
        for kind, names in expected.items():
            for resource in names:
                assert allows(grant[kind], resource), f"{service} needs {kind} on {resource}"
        others = [f"{other}.commands" for other in map(identity, PYTHON) if other != service]
        for resource in [*others, "amq.gen-x", "anything"]:
            for kind in ("configure", "read"):
                assert not allows(grant[kind], resource), f"{service} may {kind} {resource}"
        for resource in dead:
            assert not allows(grant["read"], resource), f"{service} may read its dead letters"


def test_host_agents_publish_only_their_events_and_bind_only_their_commands() -> None:
    agents = [n for n, s in PYTHON.items() if module_of(s) == "host_agent"]
    for name in agents:
        settings = settings_of(name)
        assert isinstance(settings, HostAgentSettings)
        (topic,) = [t for t in DEFINITIONS["topic_permissions"] if t["user"] == identity(name)]
        assert topic["exchange"] == settings.exchange
        known = roles()
        for message in known.messages:
            key = message.routing_key.format(host_id="host-x", owner="registration")
            ours = "host-agent" in known.producers.get(message, ())
            assert allows(topic["write"], key) == ours, f"{name} publishing {key}"
            if "{host_id}" in message.routing_key:
                own = message.address(host_id=settings.host_id)
                bound = "host-agent" in known.consumers.get(message, ())
                assert allows(topic["read"], own) == bound, own
                assert not allows(topic["read"], message.address(host_id="host-x"))
        for pattern in ("#", "host.#", "host.*.template.download", "template.register"):
            assert not allows(topic["read"], pattern), f"{name} binding {pattern}"


def test_the_cli_user_publishes_and_watches_but_owns_no_service_queue() -> None:
    grant = permissions("cli")
    server_named = "amq.gen-JzTY20BRgKO-HjmUJj0wLg"
    assert allows(grant["configure"], server_named)  # `directdl events`, deploy progress
    assert allows(grant["write"], "directdl") and allows(grant["write"], server_named)
    assert allows(grant["read"], "directdl") and allows(grant["read"], server_named)
    for name in PYTHON:
        queue = f"{identity(name)}.commands"
        assert not any(allows(grant[kind], queue) for kind in ("configure", "read")), queue
    for resource in ("directdl", "directdl.dlx"):
        assert not allows(grant["configure"], resource)
    assert not allows(grant["write"], "amq.default")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_runs_as_a_non_root_user_from_the_lock_file() -> None:
    instructions = dockerfile_instructions()
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = [shlex.split(arg) for op, arg in instructions if op == "RUN"]
    syncs = [cmd for cmd in runs if cmd[:3] == ["uv", "pip", "sync"]]
    assert syncs and all({"--require-hashes", "requirements.lock"} <= set(c) for c in syncs)
    installs = [cmd for cmd in runs if cmd[:3] == ["uv", "pip", "install"]]
    assert installs and all("--no-deps" in c and "-e" not in c for c in installs)
    assert any(op == "ENV" and "PATH=/app/.venv/bin:$PATH" in arg for op, arg in instructions)
    installed = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "libnfs-utils" in installed
    assert "qemu-utils" not in installed and "default-jre" not in installed
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for op, arg in instructions:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists() and source.rstrip("/") in allowed, source
