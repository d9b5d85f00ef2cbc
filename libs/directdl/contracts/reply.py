"""The reply envelope: `{"ok": true, "result": ...}` or `{"ok": false, "error": ...}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.bounds import Short, Text, clip
from directdl.contracts.errors import ErrorCode, MessageError


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ErrorCode
    message: Text
    # A few named things each; their values are bounded by the models they come from.
    details: dict[Short, Any] = Field(default_factory=dict, max_length=64)


class Reply(BaseModel):
    """Exactly one is sent to a command's `reply_to`, with its `correlation_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    result: dict[Short, Any] | None = Field(None, max_length=64)
    error: ErrorBody | None = None

    @classmethod
    def success(cls, result: BaseModel | dict[str, Any] | None = None) -> Reply:
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return cls(ok=True, result=result or {})

    @classmethod
    def failure(cls, code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> Reply:
        # An error's text may quote what it refused; cut, it still fits the bounded field.
        body = ErrorBody(code=code, message=clip(message), details=details or {})
        return cls(ok=False, error=body)

    @classmethod
    def from_error(cls, err: MessageError) -> Reply:
        return cls.failure(err.code, err.message, err.details)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
