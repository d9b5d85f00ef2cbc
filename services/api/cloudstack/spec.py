"""An API as CloudStack describes it: its parameters and response fields, which listApis lists,
and the function that carries it out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.cloudstack.call import Call

Handler = Callable[["Call"], dict[str, Any]]
"""Carries out one call; returns the object inside `<api>response`."""
JobResult = Callable[["Call", dict[str, Any]], dict[str, Any]]
"""An async API's `jobresult`, made from what directdl answered when its job ended."""

# CloudStack's CommandType names, lower-cased, as listApis reports a parameter's type.
TYPES = frozenset({"boolean", "date", "integer", "long", "list", "map", "string", "uuid"})
DEFAULT_LENGTH = 255


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    required: bool = False
    length: int = DEFAULT_LENGTH
    related: str = ""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Field:
    """A response field, for listApis: clients read these to show and complete results."""

    name: str
    description: str
    type: str = "string"
    response: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Api:
    name: str
    description: str
    handler: Handler
    params: tuple[Param, ...] = ()
    response: tuple[Field, ...] = ()
    isasync: bool = False
    since: str = ""
    related: str = ""
    job_result: JobResult | None = None

    @property
    def key(self) -> str:
        """The single top-level key of every answer, success or error: the API's name,
        lower-cased, as CloudStack names it."""
        return f"{self.name.lower()}response"


PAGING = (
    Param("page", "integer", "the page, from 1"),
    Param("pagesize", "integer", "items per page, at most 500; -1 for all"),
)
"""CloudStack's paging parameters, which every list API takes."""
