"""compose.yaml, the Dockerfile and deploy/ checked statically, without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet
from pydantic import AliasChoices
from sqlalchemy.engine import make_url

from api.bootstrap import NAME as API
from api.config import ApiSettings
from certificate.bootstrap import NAME as CERTIFICATE
from certificate.config import CertificateSettings
from directdl import launcher
from directdl.bus.tables import roles
from directdl.bus.topology import Topology
from directdl.contracts.senders import GATEWAY
from directdl.runtime.accounts import ADMIN
from directdl.runtime.docs import COMPOSE_HOSTS
from directdl.runtime.live_settings import SHARED_QUEUE
from directdl.runtime.provision import (
    SAFE_PASSWORD,
    SECRETS_KEY_VARIABLE,
    amqp_password_variable,
    database_role_name,
    db_password_variable,
    postgres_password_variable,
)
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
    "api": ApiSettings,
    "host_agent": HostAgentSettings,
}
CENTRAL = {
    "registration": REGISTRATION,
    "certificate": CERTIFICATE,
    "sync_scheduler": SYNC_SCHEDULER,
    "api": API,
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


COMPOSE: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DEFINITIONS: dict[str, Any] = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
# What compose reads as .env after `cp .env.example .env`.
ENV_EXAMPLE: dict[str, str] = dict(
    line.split("=", 1)
    for line in (ROOT / ".env.example").read_text().splitlines()
    if line and not line.startswith("#")
)
# `${NAME:?message}`: a variable compose refuses to run without, saying what to do.
REQUIRED = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?([^}]*)\}")
# Not in the Procfile.
INFRASTRUCTURE = ("rabbitmq", "rabbitmq-2", "rabbitmq-3", "postgres", "prometheus", "grafana")


def interpolated(value: str) -> str:
    """A value as compose passes it with .env.example as .env; every variable is required."""
    resolved = REQUIRED.sub(lambda match: ENV_EXAMPLE[match[1]], value)
    assert "$" not in resolved, f"{value}: only ${{NAME:?message}} is used here"
    return resolved


def variables_in(value: str) -> list[str]:
    return [match[1] for match in REQUIRED.finditer(value)]


def module_of(service: dict[str, Any]) -> str | None:
    """`python -m <module>` -> module; None for services that run something else."""
    command = service.get("command", [])
    return command[2] if command[:2] == ["python", "-m"] else None


PYTHON = {name: s for name, s in SERVICES.items() if module_of(s) in SETTINGS}


def raw_env_of(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {key: interpolated(value) for key, value in raw_env_of(service).items()}


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
                    assert mode == ["ro"], f"{name}: {volume}"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"


def test_services_wait_for_healthy_infrastructure() -> None:
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if dependency in ("rabbitmq", "postgres"):
                assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"
    for name, service in PYTHON.items():
        needs = service["depends_on"]
        assert needs["rabbitmq"] == {"condition": "service_healthy"}, name
        # Its broker user, and its database role, exist with the passwords of .env.
        assert needs["broker-init"] == {"condition": "service_completed_successfully"}, name
        central = module_of(service) in CENTRAL
        assert ("postgres" in needs) == central == ("db-init" in needs), name
        if central:
            assert needs["db-init"] == {"condition": "service_completed_successfully"}, name
    for init, store in (("broker-init", "rabbitmq"), ("db-init", "postgres")):
        assert SERVICES[init]["restart"] == "no"
        assert SERVICES[init]["depends_on"] == {store: {"condition": "service_healthy"}}
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
        if service.get("restart") != "no" and name not in INFRASTRUCTURE
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


def test_the_cloudstack_api_is_on_8080_in_compose_and_make_run_and_the_sample_is_not() -> None:
    settings = settings_of("api")
    assert isinstance(settings, ApiSettings)
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 8080)
    # `make run` serves it on the settings' default port, on loopback.
    procfile = launcher.assignments(launcher.read_procfile()["api"])
    assert not {"API_LISTEN_HOST", "API_LISTEN_PORT"} & set(procfile)
    assert ApiSettings.model_fields["listen_port"].default == 8080
    assert ApiSettings.model_fields["listen_host"].default == "127.0.0.1"
    assert 8080 not in launcher.SAMPLE_PORTS
    assert launcher.SAMPLE_PORTS == (8088, 8443)


def test_make_run_gives_the_gateway_one_secrets_key_across_runs(tmp_path: Path) -> None:
    """Without API_SECRETS_KEY, `make run` makes a key at its first run and keeps it in the
    data directory for its owner alone, so that the secrets stored under it stay readable; an
    API_SECRETS_KEY in the environment wins, and leaves no file behind."""
    given = Fernet.generate_key().decode()
    assert launcher.secrets_key(tmp_path, {SECRETS_KEY_VARIABLE: given}) == given
    assert not (tmp_path / launcher.SECRETS_KEY_FILE).exists()

    first = launcher.secrets_key(tmp_path, {})
    Fernet(first)
    path = tmp_path / launcher.SECRETS_KEY_FILE
    assert path.read_text().strip() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert launcher.secrets_key(tmp_path, {SECRETS_KEY_VARIABLE: ""}) == first
    assert launcher.secrets_key(tmp_path, {SECRETS_KEY_VARIABLE: given}) == given
    assert path.read_text().strip() == first, "the environment's key replaced the kept one"

    path.write_text("not a key\n")
    with pytest.raises(launcher.LaunchError, match="holds no Fernet key: set API_SECRETS_KEY"):
        launcher.secrets_key(tmp_path, {})


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
    assert hosts == set(COMPOSE_HOSTS), "definitions.json has users for COMPOSE_HOSTS only"


def test_each_central_service_owns_a_postgres_database_and_role() -> None:
    """db-init creates, for each central service, the role and database its URL names, with
    the password of the variable that URL reads."""
    db_init = raw_env_of(SERVICES["db-init"])
    used = []
    for name, service in PYTHON.items():
        url = settings_of(name).database_url
        if module_of(service) not in CENTRAL:
            assert url is None, f"{name} keeps its embedded database"
            continue
        assert url is not None
        parsed = make_url(url)
        role = database_role_name(CENTRAL[module_of(service) or ""])
        assert (parsed.drivername, parsed.host) == ("postgresql+psycopg", "postgres"), name
        assert (parsed.username, parsed.database) == (role, role), name
        raw = raw_env_of(service)[f"{module_of(service) or ''}_database_url".upper()]
        assert variables_in(raw) == [db_password_variable(role)], name
        assert variables_in(db_init[db_password_variable(role)]) == [db_password_variable(role)]
        used.append(role)
    central = sorted(database_role_name(service) for service in CENTRAL.values())
    assert sorted(used) == sorted(set(used)) == central
    superuser = postgres_password_variable()
    assert variables_in(raw_env_of(SERVICES["postgres"])[superuser]) == [superuser]
    assert variables_in(db_init[superuser]) == [superuser]
    assert "--host" in SERVICES["db-init"]["command"]
    assert not (ROOT / "deploy/postgres").exists(), "db-init makes the roles, not an init script"


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
        # The passwords are in .env only; broker-init adds them.
        assert not {"password", "password_hash", "hashing_algorithm"} & set(user), user
    for grant in DEFINITIONS["permissions"]:
        if grant["user"] != "admin":
            for regex in (grant["configure"], grant["write"], grant["read"]):
                assert regex.startswith("^") and regex.endswith("$"), grant
    # The node's default user is admin, not guest; it would not be created if the node loaded
    # definitions at boot, so broker-init imports them instead.
    rabbitmq = raw_env_of(SERVICES["rabbitmq"])
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] == ADMIN
    assert variables_in(rabbitmq["RABBITMQ_DEFAULT_PASS"]) == [amqp_password_variable(ADMIN)]
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert not re.search(r"^\s*(load_definitions|definitions\.)", conf, re.M)
    mounts = dict(v.split(":")[:2] for v in SERVICES["broker-init"]["volumes"])
    assert mounts["./deploy/rabbitmq/definitions.json"] in SERVICES["broker-init"]["command"]


def test_broker_init_has_the_password_of_every_user_in_the_definitions() -> None:
    env = raw_env_of(SERVICES["broker-init"])
    expected = {amqp_password_variable(user["name"]) for user in DEFINITIONS["users"]}
    assert set(env) == expected
    for variable, value in env.items():
        assert variables_in(value) == [variable], variable
    assert "http://rabbitmq:15672" in SERVICES["broker-init"]["command"]


def test_each_service_connects_as_its_own_user_with_its_password() -> None:
    users = []
    for name in PYTHON:
        url = urlsplit(settings_of(name).amqp_url)
        assert (url.hostname, url.username) == ("rabbitmq", identity(name)), name
        rabbit_user(identity(name))  # one broker-init creates
        raw = raw_env_of(SERVICES[name])["AMQP_URL"]
        assert variables_in(raw) == [amqp_password_variable(identity(name))], name
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
        # The gateway owns no global setting, so takes no turn on their shared queue; it reads
        # the replies of the calls it makes for its clients on server-named queues, as the CLI.
        shares = not isinstance(settings, HostAgentSettings) and service != GATEWAY
        consumed = [topology.queue(service, purpose) for purpose in purposes]
        if shares:
            consumed.append(topology.queue_prefix + SHARED_QUEUE)
        dead = [topology.dead_letter_queue(service)]
        if shares:
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
        server_named = ["amq.gen-x"] if service != GATEWAY else []
        assert allows(grant["read"], "amq.gen-x") == (service == GATEWAY), service
        for resource in [*others, *server_named, "anything"]:
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


def test_every_credential_comes_from_env_and_none_is_written_in_compose() -> None:
    """.env.example names exactly the variables compose requires, each a URL-safe password
    but for the gateway's Fernet key, and no value of it appears in compose.yaml."""
    text = (ROOT / "compose.yaml").read_text()
    required = {match[1] for match in REQUIRED.finditer(text)}
    assert required == set(ENV_EXAMPLE)
    assert {match[2] for match in REQUIRED.finditer(text)} == {"cp .env.example .env"}
    for variable, value in ENV_EXAMPLE.items():
        if variable == SECRETS_KEY_VARIABLE:
            Fernet(value)  # a key, in no URL: url-safe base64 with its padding
        else:
            assert SAFE_PASSWORD.fullmatch(value), variable
        assert value not in text, f"{variable}'s value is written in compose.yaml"
    for name, service in SERVICES.items():
        for key, value in raw_env_of(service).items():
            if "PASS" in key:
                assert variables_in(value) and REQUIRED.fullmatch(value), f"{name}: {key}"
            for url in re.findall(r"\w+://\S+", value):
                if "@" in url:
                    password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
                    assert REQUIRED.fullmatch(password), f"{name}: {key}"
    generated = {amqp_password_variable(user["name"]) for user in DEFINITIONS["users"]}
    assert generated <= set(ENV_EXAMPLE)


def test_health_ports_are_published_on_localhost_as_make_run_uses_them() -> None:
    procfile = launcher.read_procfile()
    ports = set()
    for name in PYTHON:
        settings = settings_of(name)
        port = settings.health_port
        published = [f"127.0.0.1:{port}:{port}"]
        if isinstance(settings, ApiSettings):
            published.insert(0, f"127.0.0.1:{settings.listen_port}:{settings.listen_port}")
        assert SERVICES[name]["ports"] == published, name
        # `make run` listens on the same port (the Procfile's, or the settings' default).
        make_run = launcher.assignments(procfile[name]).get(
            f"{type(settings).model_config.get('env_prefix', '')}HEALTH_PORT",
            str(type(settings).model_fields["health_port"].default),
        )
        assert int(make_run) == port, name
        env = env_of(SERVICES[name])
        health_url = next(v for k, v in env.items() if k.endswith("_HEALTH_URL"))
        assert health_url == f"http://127.0.0.1:{port}", name
        ports.add(port)
    assert len(ports) == len(PYTHON)
    assert ports >= {8090, 8091}
    for service in SERVICES.values():
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), published


def test_prometheus_scrapes_every_service_on_its_health_port() -> None:
    prometheus = SERVICES["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    config = load_yaml(ROOT / "deploy/prometheus/prometheus.yml")
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    targets = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for sd in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{sd['port']}" for name in sd["names"])
    for name in PYTHON:
        assert f"{name}:{settings_of(name).health_port}" in targets, name
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    grafana = SERVICES["grafana"]
    assert grafana["profiles"] == ["grafana"]
    for volume in grafana["volumes"]:
        assert volume.startswith("./deploy/grafana/"), volume


def test_the_broker_is_a_supported_rabbitmq_series_with_management_and_prometheus() -> None:
    image = SERVICES["rabbitmq"]["image"]
    match = re.fullmatch(r"rabbitmq:(\d+)\.(\d+)-management", image)
    assert match, image
    assert (int(match[1]), int(match[2])) >= (3, 13), f"{image} is an end-of-life series"
    plugins = (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    assert re.fullmatch(r"\[rabbitmq_management,rabbitmq_prometheus\]\.\n", plugins)
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    for feature in ("transient_nonexcl_queues", "global_qos"):
        assert f"deprecated_features.permit.{feature} = false" in conf.splitlines()


def compose_cli() -> list[str] | None:
    """Debian's docker-compose 1.29, or the docker CLI's compose plugin; None without either."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    # Only PATH: a password exported in this shell must not stand in for the env file.
    return subprocess.run(
        [*cli, "--env-file", str(env_file), "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
        cwd=ROOT,
    )


def test_compose_itself_accepts_the_file_with_env_example() -> None:
    done = compose_config(ROOT / ".env.example")
    assert done.returncode == 0, done.stderr


def test_compose_refuses_to_run_without_the_passwords_and_says_what_to_do(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = compose_config(empty)
    assert done.returncode != 0
    assert "cp .env.example .env" in done.stderr, done.stderr


def test_the_image_builds_directdl_with_the_build_backend_the_dev_lock_pins() -> None:
    runs = [shlex.split(arg) for op, arg in dockerfile_instructions() if op == "RUN"]
    installs = [cmd for cmd in runs if cmd[:3] == ["uv", "pip", "install"]]
    for command in installs:
        constraint = command[command.index("--build-constraint") + 1]
        assert constraint == "requirements-dev.lock", command
    pyproject = (ROOT / "pyproject.toml").read_text()
    backend = re.search(r'^\[build-system\]\nrequires = \["(\w+)"\]', pyproject, re.M)
    assert backend and backend[1] == "hatchling"
    lock = (ROOT / "requirements-dev.lock").read_text()
    # Pinned with its hashes: uv refuses a build backend whose hash differs.
    assert re.search(r"^hatchling==[\d.]+ \\\n    --hash=sha256:", lock, re.M)
    copied = " ".join(arg for op, arg in dockerfile_instructions() if op == "COPY")
    assert "requirements-dev.lock" in copied


def test_the_cluster_profile_adds_two_nodes_that_join_the_first_with_one_cookie() -> None:
    members = {name: s for name, s in SERVICES.items() if s.get("profiles") == ["cluster"]}
    assert sorted(members) == ["rabbitmq-2", "rabbitmq-3"]
    first = env_of(SERVICES["rabbitmq"])
    conf = (ROOT / "deploy/rabbitmq/cluster.conf").read_text().splitlines()
    assert "cluster_formation.classic_config.nodes.1 = rabbit@rabbitmq" in conf
    # Whatever the single node refuses, the others refuse too.
    for line in (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in conf, line
    for name, member in members.items():
        assert member["image"] == SERVICES["rabbitmq"]["image"], name
        assert member["hostname"] == name
        env = env_of(member)
        for key in ("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "RABBITMQ_CTL_ERL_ARGS"):
            assert env[key] == first[key] == f"-setcookie {ENV_EXAMPLE['RABBITMQ_ERLANG_COOKIE']}"
        assert "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/rabbitmq.conf:ro" in member["volumes"]
        assert member["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
