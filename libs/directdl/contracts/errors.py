"""Stable error codes and the exception that carries one to a reply."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_MESSAGE = "INVALID_MESSAGE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNSUPPORTED = "UNSUPPORTED"
    INTERNAL = "INTERNAL"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"  # no Up host could take the work
    DOWNLOAD_FAILED = "DOWNLOAD_FAILED"  # every attempt failed; details list them
    URL_UNREACHABLE = "URL_UNREACHABLE"  # the registration-time check could not fetch the URL
    DESTINATION_DENIED = "DESTINATION_DENIED"  # the download destination policy refuses it
    DIGEST_MISMATCH = "DIGEST_MISMATCH"  # a reported copy does not match the expected digest


class MessageError(Exception):
    """An expected failure: acked, answered with its code, never retried."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class InvalidMessage(MessageError):
    code = ErrorCode.INVALID_MESSAGE


class NotFound(MessageError):
    code = ErrorCode.NOT_FOUND


class Conflict(MessageError):
    code = ErrorCode.CONFLICT


class Unsupported(MessageError):
    code = ErrorCode.UNSUPPORTED
