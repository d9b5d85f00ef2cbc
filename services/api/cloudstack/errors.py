"""CloudStack's errors: an HTTP status equal to `errorcode`, a `cserrorcode`, and directdl's codes
mapped onto them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import ErrorBody

MAX_TEXT = 1000  # an errortext names the bad value briefly, never echoing megabytes


class ApiErrorCode(IntEnum):
    """CloudStack's ApiErrorCode; the HTTP status is the same number."""

    UNAUTHORIZED = 401
    METHOD_NOT_ALLOWED = 405
    PARAM_ERROR = 431
    UNSUPPORTED_ACTION = 432
    INTERNAL_ERROR = 530
    ACCOUNT_ERROR = 531
    RESOURCE_UNAVAILABLE = 534


class CsErrorCode(IntEnum):
    """CloudStack's CSExceptionErrorCode: which Java exception it would have been."""

    SERVER_API = 9999
    CLOUD_RUNTIME = 4250
    INVALID_PARAMETER_VALUE = 4350
    RESOURCE_UNAVAILABLE = 4380
    OPERATION_TIMED_OUT = 4560


@dataclass(frozen=True)
class ApiError(Exception):
    """An answer in CloudStack's error shape. `cserrorcode` None: the servlet's own 401s,
    which carry none."""

    errorcode: ApiErrorCode
    errortext: str
    cserrorcode: CsErrorCode | None = CsErrorCode.SERVER_API

    def __str__(self) -> str:
        return self.errortext

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"uuidList": [], "errorcode": int(self.errorcode)}
        if self.cserrorcode is not None:
            body["cserrorcode"] = int(self.cserrorcode)
        body["errortext"] = clip(self.errortext)
        return body


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


UNAUTHORIZED = ApiError(
    ApiErrorCode.UNAUTHORIZED,
    "unable to verify user credentials and/or request signature",
    cserrorcode=None,
)
"""The one answer to every authentication failure and unknown command, as CloudStack's."""


def missing(api: str, name: str) -> ApiError:
    return ApiError(
        ApiErrorCode.PARAM_ERROR,
        f"Unable to execute API command {api.lower()} due to missing parameter {name}",
    )


def invalid(api: str, name: str, value: str) -> ApiError:
    shown = value if len(value) <= 64 else value[:63] + "…"
    return ApiError(
        ApiErrorCode.PARAM_ERROR,
        f"Unable to execute API command {api.lower()} due to invalid value {shown} "
        f"for parameter {name}",
    )


def param_error(text: str) -> ApiError:
    return ApiError(ApiErrorCode.PARAM_ERROR, text, CsErrorCode.INVALID_PARAMETER_VALUE)


# directdl's reply codes, as the reference's table maps them: what CloudStack reports as an
# invalid parameter is 431; what no host could take, 534; the rest CloudStack calls internal.
_MAPPED: dict[ErrorCode, tuple[ApiErrorCode, CsErrorCode]] = {
    ErrorCode.INVALID_MESSAGE: (ApiErrorCode.PARAM_ERROR, CsErrorCode.INVALID_PARAMETER_VALUE),
    ErrorCode.NOT_FOUND: (ApiErrorCode.PARAM_ERROR, CsErrorCode.INVALID_PARAMETER_VALUE),
    ErrorCode.CONFLICT: (ApiErrorCode.PARAM_ERROR, CsErrorCode.INVALID_PARAMETER_VALUE),
    ErrorCode.DESTINATION_DENIED: (
        ApiErrorCode.PARAM_ERROR,
        CsErrorCode.INVALID_PARAMETER_VALUE,
    ),
    ErrorCode.UNSUPPORTED: (ApiErrorCode.PARAM_ERROR, CsErrorCode.SERVER_API),
    ErrorCode.UNAVAILABLE: (ApiErrorCode.RESOURCE_UNAVAILABLE, CsErrorCode.RESOURCE_UNAVAILABLE),
    ErrorCode.TIMEOUT: (ApiErrorCode.INTERNAL_ERROR, CsErrorCode.OPERATION_TIMED_OUT),
    ErrorCode.URL_UNREACHABLE: (ApiErrorCode.PARAM_ERROR, CsErrorCode.CLOUD_RUNTIME),
    ErrorCode.DOWNLOAD_FAILED: (ApiErrorCode.INTERNAL_ERROR, CsErrorCode.CLOUD_RUNTIME),
    ErrorCode.DIGEST_MISMATCH: (ApiErrorCode.INTERNAL_ERROR, CsErrorCode.CLOUD_RUNTIME),
    ErrorCode.INTERNAL: (ApiErrorCode.INTERNAL_ERROR, CsErrorCode.CLOUD_RUNTIME),
}


def from_directdl(error: ErrorBody) -> ApiError:
    """directdl's refusal, in CloudStack's shape, carrying directdl's message and code."""
    status, cs_code = _MAPPED.get(error.code, _MAPPED[ErrorCode.INTERNAL])
    return ApiError(status, f"{error.message} [{error.code}]", cs_code)
