"""The CloudStack API as a WSGI application: parse as ApiServlet does, verify as
ApiServer.verifyRequest does, run the API, and answer in CloudStack's JSON shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from api.adapters.bus_caller import BusCaller
from api.adapters.job_desk import JobDesk
from api.adapters.key_book import KeyBook
from api.cloudstack import errors
from api.cloudstack.call import Call
from api.cloudstack.errors import UNAUTHORIZED, ApiError, ApiErrorCode
from api.cloudstack.expiry import check_request_expiry
from api.cloudstack.params import BadParameter, check_printable, request_params
from api.cloudstack.signing import control, verify
from api.cloudstack.spec import Api
from directdl.runtime import metrics

log = structlog.get_logger(__name__)

PATH = "/client/api"
CONTENT_TYPE = "application/json; charset=UTF-8"
# A PEM certificate is at most 65535 characters; a whole request need be little more.
MAX_BODY_BYTES = 1 << 20
# CloudStack's enforce.post.requests.and.timestamps allows expires up to 15 minutes ahead.
MAX_AHEAD = timedelta(minutes=15)
UNKNOWN = "errorresponse"
SERVICE = "api"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class CloudStackApp:
    apis: Mapping[str, Api]
    bus: BusCaller
    jobs: JobDesk
    keys: KeyBook
    clock: Callable[[], datetime]
    enforce_expires: bool = False

    def __call__(self, request: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if request.get("PATH_INFO", "") != PATH:
            return _plain(start_response, "404 Not Found", f"the CloudStack API is at {PATH}\n")
        method = request.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            error = ApiError(
                ApiErrorCode.METHOD_NOT_ALLOWED, f"{method} is not served: use GET or POST"
            )
            return _answer(start_response, UNKNOWN, error)
        began = time.monotonic()
        api, key, status, body = self.handle(request)
        # The API's name only when it is served: a client's typo must not become a series.
        name = api.name if api is not None else "unknown"
        metrics.api_requests.labels(SERVICE, name, str(status)).inc()
        metrics.api_request_seconds.labels(SERVICE, name).observe(time.monotonic() - began)
        if isinstance(body, ApiError):
            return _answer(start_response, key, body)
        return _respond(start_response, status, {key: body})

    def handle(
        self, request: dict[str, Any]
    ) -> tuple[Api | None, str, int, dict[str, Any] | ApiError]:
        """The API called (None when it is not served), the response's key, status and body
        (an ApiError for a refusal)."""
        api: Api | None = None
        try:
            params = request_params(
                request.get("QUERY_STRING", ""), _body(request), request.get("CONTENT_TYPE")
            )
            api = self.apis.get(params.get("command", ""))
            if api is None:  # CloudStack answers an unknown command as a bad signature
                raise UNAUTHORIZED
            api_key = self._authenticate(api, params)
            check_printable(params)
            call = Call(api, self.apis, params, self.bus, self.jobs, api_key, self.clock)
            call.check()
            result = api.handler(call)
        except BadParameter as err:
            return api, _key(api), 431, errors.param_error(str(err))
        except ApiError as err:
            key = (
                UNKNOWN
                if api is None or err.errorcode is ApiErrorCode.UNSUPPORTED_ACTION
                else api.key
            )
            return api, key, int(err.errorcode), err
        except Exception:  # the client learns only that it failed: the log says why
            log.exception("api.failed", api=api.name if api else None)
            return (
                api,
                _key(api),
                530,
                ApiError(
                    ApiErrorCode.INTERNAL_ERROR,
                    "Internal error executing command, please contact your system administrator",
                ),
            )
        return api, api.key, 200, result

    def _authenticate(self, api: Api, params: Mapping[str, str]) -> str:
        """The API key that signed the request; every failure is the same 401, as CloudStack's,
        and only the log says which it was."""
        api_key, signature = control(params, "apikey"), control(params, "signature")
        if not api_key or not signature:
            return self._refuse(api, "no apiKey or no signature")
        reason = check_request_expiry(
            params,
            self.clock(),
            MAX_AHEAD if self.enforce_expires else None,
            require_v3=self.enforce_expires,
        )
        if reason is not None:
            return self._refuse(api, reason)
        key = self.keys.usable(api_key)
        if key is None:
            return self._refuse(api, f"unknown or revoked key {api_key[:8]}…")
        if not verify(params, key.secret):
            return self._refuse(api, f"bad signature for key {key.name}")
        self.keys.used(api_key)
        return api_key

    def _refuse(self, api: Api, reason: str) -> str:
        log.info("api.unauthorized", api=api.name, reason=reason)
        raise UNAUTHORIZED


def _key(api: Api | None) -> str:
    return api.key if api is not None else UNKNOWN


def _body(request: dict[str, Any]) -> bytes:
    try:
        length = int(request.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadParameter("Content-Length is not a number") from None
    if length > MAX_BODY_BYTES:
        raise BadParameter(f"the request body of {length} bytes is over {MAX_BODY_BYTES}")
    stream = request.get("wsgi.input")
    return stream.read(length) if stream is not None and length > 0 else b""


def _answer(start_response: StartResponse, key: str, error: ApiError) -> Iterable[bytes]:
    # CloudMonkey prints this header for errors; HTTP headers carry only latin-1 on one line.
    description = " ".join(error.errortext.split()).encode("latin-1", "replace").decode("latin-1")
    return _respond(
        start_response,
        int(error.errorcode),
        {key: error.body()},
        [("X-Description", description[:512])],
    )


def _respond(
    start_response: StartResponse,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(payload))), *(headers or [])],
    )
    return [payload]


def _plain(start_response: StartResponse, status: str, text: str) -> Iterable[bytes]:
    payload = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


# What Jetty says beside CloudStack's codes; clients read only the number.
_REASONS = {
    200: "OK",
    401: "Unauthorized",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    432: "Unsupported Action",
    530: "Internal Error",
    531: "Account Error",
    534: "Resource Unavailable",
}
