"""Stable error codes and the exception that carries one to a reply."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """A failure reply's `error.code`; the README's table of error codes says what each means."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNSUPPORTED = "UNSUPPORTED"
    INTERNAL = "INTERNAL"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
    URL_UNREACHABLE = "URL_UNREACHABLE"
    DESTINATION_DENIED = "DESTINATION_DENIED"
    DIGEST_MISMATCH = "DIGEST_MISMATCH"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


# One line each; the README's table of codes is generated from these (`make docs`).
MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_MESSAGE: "the message breaks the contract; `details.errors` lists the "
    "fields, and sending it again unchanged fails again",
    ErrorCode.NOT_FOUND: "what the message names (template, deploy, certificate, host, setting) "
    "is not known",
    ErrorCode.CONFLICT: "the current state refuses it: a name or id already taken, a revoked "
    "certificate",
    ErrorCode.UNSUPPORTED: "valid, but not something direct download does (another hypervisor, "
    "scheme or key type), or a routing key this service has no handler for",
    ErrorCode.INTERNAL: "an unexpected failure, still there after the retries; the message is "
    "dead-lettered and the service's log says why",
    ErrorCode.TIMEOUT: "no reply or outcome in time (the CLI's own, exit 3); the command may "
    "still take effect",
    ErrorCode.UNAVAILABLE: "no Up host could take the work; it may succeed once one is Up",
    ErrorCode.DOWNLOAD_FAILED: "every attempt of the deploy failed; `details` lists them",
    ErrorCode.URL_UNREACHABLE: "the registration-time check could not fetch the URL",
    ErrorCode.DESTINATION_DENIED: "the download destination policy refuses the URL's host, "
    "naming the rule",
    ErrorCode.DIGEST_MISMATCH: "a host reported a copy whose digest is not the template's",
}


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
