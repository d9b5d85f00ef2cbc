"""The README's tables of error codes, environment variables and global settings, from the code."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from directdl.bus.tables import GROUP
from directdl.contracts.errors import ErrorCode
from directdl.runtime.settings import ServiceSettings
from directdl.settings_catalog import SETTINGS, Setting

README = Path("README.md")
BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[a-z-]+) -->\n).*?(?P<close><!-- end generated -->)",
    re.DOTALL,
)
# Every service's settings class lives in its package's `config` module: the house shape.
CONFIG_MODULE = "config"


@dataclass(frozen=True)
class Variable:
    """A variable read straight from the environment rather than through a settings class."""

    name: str
    default: str
    read_by: str
    meaning: str


# Each one the code reads with os.environ or as a typer option's envvar, and no settings class
# declares. tests/unit/test_readme_tables.py fails when the code reads one missing here, or
# stops reading one listed.
DIRECT_VARIABLES = (
    Variable(
        "DIRECTDL_HEALTH_URLS",
        "the local ports of `make run`",
        "the CLI",
        "Where `directdl status` looks, as `name=url,...`.",
    ),
    Variable(
        "DIRECTDL_OUTPUT",
        "a table",
        "the CLI",
        "The CLI's `-o/--output` when not given: table, json, csv, tsv or text.",
    ),
    Variable(
        "DIRECTDL_LOG_FORMAT",
        "console on a terminal, else json",
        "every service, `make run`",
        "`json` or `console`; under `make run`, every line as the services write it.",
    ),
    Variable(
        "DIRECTDL_FAULT_PAUSE",
        "unset",
        "every service",
        "Tests only: `before_commit:30` or `before_ack:30` pauses there, to be killed.",
    ),
)


def service_settings() -> dict[str, type[ServiceSettings]]:
    """Each installed service's settings class by its name: the `config` module of the package
    each `directdl.services` entry point names, so that the shared code names no service."""
    found: dict[str, type[ServiceSettings]] = {}
    for point in entry_points(group=GROUP):
        package = point.module.partition(".")[0]
        module = importlib.import_module(f"{package}.{CONFIG_MODULE}")
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise LookupError(f"{module.__name__} should define one ServiceSettings, not {classes}")
        found[point.name] = classes[0]
    if not found:
        raise LookupError(f"no {GROUP} entry points: is the project installed (make install)?")
    return dict(sorted(found.items()))


def env_name(cls: type[ServiceSettings], field: str) -> str | None:
    """The variable a field is read from when it has an alias of its own, else None."""
    alias = cls.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return next(str(choice).upper() for choice in alias.choices if isinstance(choice, str))
    if isinstance(alias, str):
        return alias.upper()
    return None


def prefix_of(cls: type[ServiceSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def description(cls: type[ServiceSettings], field: str) -> str:
    """The field's description, or the one of the field it overrides (a new default only)."""
    for klass in cls.__mro__:
        info: FieldInfo | None = getattr(klass, "model_fields", {}).get(field)
        if info is not None and info.description:
            return info.description
    return ""


Row = tuple[str, ...]


def environment_rows() -> list[Row]:
    """(variable, default, read by, meaning): every variable the settings classes and the code
    read."""
    classes = service_settings()
    rows: list[Row] = []
    for field in ServiceSettings.model_fields:
        name = env_name(ServiceSettings, field)
        defaults = {service: cls.model_fields[field].default for service, cls in classes.items()}
        shown = _defaults(defaults)
        meaning = description(ServiceSettings, field)
        rows.append((f"`{name or '<PREFIX>_' + field.upper()}`", shown, "every service", meaning))
    for service, cls in classes.items():
        for field, info in cls.model_fields.items():
            if field in ServiceSettings.model_fields:
                continue
            variable = env_name(cls, field) or f"{prefix_of(cls)}{field}".upper()
            rows.append((f"`{variable}`", _value(info.default), service, description(cls, field)))
    for direct in DIRECT_VARIABLES:
        rows.append((f"`{direct.name}`", direct.default, direct.read_by, direct.meaning))
    return rows


def environment_table() -> str:
    prefixes = ", ".join(
        f"`{prefix_of(cls)}` ({service})" for service, cls in service_settings().items()
    )
    lead = f"`<PREFIX>` is each service's own: {prefixes}.\n\n"
    return lead + _table(("variable", "default", "read by", "meaning"), environment_rows())


def error_codes_table() -> str:
    return _table(("code", "meaning"), [(f"`{code}`", code.meaning) for code in ErrorCode])


def settings_table() -> str:
    return _table(
        ("name", "default", "range", "owner", "meaning"),
        [
            (
                f"`{s.name}`" + (" (hidden)" if s.hidden else ""),
                _setting_value(s, s.default),
                _setting_range(s),
                s.owner,
                s.description,
            )
            for s in SETTINGS.values()
        ],
    )


def tables() -> dict[str, str]:
    """Each generated block's text by the name its marker gives it."""
    return {
        "error-codes": error_codes_table(),
        "environment": environment_table(),
        "settings": settings_table(),
    }


def render(text: str) -> str:
    """The README with every generated block rewritten from the code."""
    blocks = tables()
    named = [match["name"] for match in BLOCK.finditer(text)]
    unknown = sorted(set(named) - set(blocks))
    missing = sorted(set(blocks) - set(named))
    if unknown or missing:
        raise ValueError(
            f"README blocks: unknown {unknown or 'none'}, missing {missing or 'none'}; each of "
            f"{sorted(blocks)} needs `<!-- generated: NAME -->` ... `<!-- end generated -->`"
        )
    return BLOCK.sub(lambda m: f"{m['open']}{blocks[m['name']]}{m['close']}", text)


def _table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text as one table cell: outside code spans, `<data dir>` is not taken for an HTML tag."""
    parts = text.replace("|", "\\|").split("`")
    for plain in range(0, len(parts), 2):
        parts[plain] = parts[plain].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _defaults(by_service: dict[str, Any]) -> str:
    """One default when every service has it, else each service's."""
    values = {_value(default) for default in by_service.values()}
    if len(values) == 1:
        return values.pop()
    return ", ".join(f"{_value(default)} ({service})" for service, default in by_service.items())


def _value(default: Any) -> str:
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, int):
        return str(default)
    if isinstance(default, Enum):
        default = default.value
    return f"`{default}`" if str(default) else "empty"


def _setting_value(setting: Setting, value: float | str) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else "empty"
    if setting.unit == "bytes":
        return _bytes(value)
    return f"{_number(value)} {setting.unit}"


def _setting_range(setting: Setting) -> str:
    if setting.kind is str:
        return f"at most {setting.maximum:g} characters"
    if setting.unit == "bytes":
        low = _bytes(setting.minimum) if setting.minimum else "0"
        return f"{low} to {_bytes(setting.maximum)}"
    return f"{_number(setting.minimum)} to {_number(setting.maximum)} {setting.unit}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _bytes(value: float) -> str:
    """A size as a reader counts it: 1 MiB rather than 1048576 bytes."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if value and int(value) % (1 << shift) == 0:
            return f"{int(value) >> shift} {unit}"
    return f"{_number(value)} bytes"
