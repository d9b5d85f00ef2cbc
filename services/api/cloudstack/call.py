"""One API call: its parameters read as CloudStack's ParamProcessWorker reads them, and what
carrying it out needs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from api.cloudstack import errors
from api.cloudstack.spec import Api
from directdl.contracts.base import Command

if TYPE_CHECKING:
    from api.adapters.bus_caller import BusCaller
    from api.adapters.job_desk import JobDesk

_INDEXED = re.compile(r"^(?P<name>[^\[]+)\[(?P<index>\d+)\]\.(?P<key>.+)$")
_INTEGER = re.compile(r"^-?\d{1,18}$")
C = TypeVar("C", bound=Command)


@dataclass
class Call:
    api: Api
    apis: Mapping[str, Api]
    params: dict[str, str]
    bus: BusCaller
    jobs: JobDesk
    api_key: str
    clock: Callable[[], datetime]

    def check(self) -> None:
        """CloudStack's own checks, before anything is sent: what is required is there, and
        what is typed parses. Parameters the API does not know are ignored, as CloudStack does."""
        for param in self.api.params:
            value = self.text(param.name)
            if value is None:
                if param.required and not (param.type == "map" and self.map(param.name)):
                    raise errors.missing(self.api.name, param.name)
                continue
            if len(value) > param.length and param.type in ("string", "uuid"):
                raise errors.invalid(self.api.name, param.name, value)
            if param.type == "boolean" and value.lower() not in ("true", "false"):
                raise errors.invalid(self.api.name, param.name, value)
            if param.type in ("integer", "long") and not _INTEGER.match(value):
                raise errors.invalid(self.api.name, param.name, value)

    def text(self, name: str) -> str | None:
        """The value, or None when absent or empty: CloudStack treats both as not given."""
        value = self.params.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise errors.missing(self.api.name, name)
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.text(name)
        return default if value is None else value.lower() == "true"

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        return None if value is None else int(value)

    def map(self, name: str) -> dict[str, str]:
        """A map parameter: `details[0].KEY=VALUE` as cs sends it, or CloudStack's other
        form, `details[0].key=KEY&details[0].value=VALUE`."""
        groups: dict[int, dict[str, str]] = {}
        for param, value in self.params.items():
            match = _INDEXED.match(param)
            if match and match["name"] == name:
                groups.setdefault(int(match["index"]), {})[match["key"]] = value
        merged: dict[str, str] = {}
        for _, group in sorted(groups.items()):
            if set(group) == {"key", "value"}:
                merged[group["key"]] = group["value"]
            else:
                merged.update(group)
        return merged

    def command(self, model: type[C], names: Mapping[str, str], **fields: Any) -> C:
        """directdl's command from these fields (None ones left out), or CloudStack's 431
        naming the parameter, by its CloudStack name, whose value the contract refuses."""
        try:
            return model(**{name: value for name, value in fields.items() if value is not None})
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            param = names.get(field, field)
            raise errors.param_error(
                f"Unable to execute API command {self.api.name.lower()} due to invalid value "
                f"for parameter {param}: {first['msg']}"
            ) from err
