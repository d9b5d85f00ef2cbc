"""The gateway's HTTP side as a CloudStack client meets it: signatures, 401s, CloudStack's error
shapes and codes, with a real key store and a scripted bus."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from prometheus_client import REGISTRY

from api.adapters.job_desk import JobDesk
from api.adapters.key_book import KeyBook
from api.adapters.secrets_box import SecretBox
from api.bootstrap import MIGRATIONS
from api.cloudstack.app import CloudStackApp
from api.cloudstack.errors import ApiError, ApiErrorCode, CsErrorCode, from_directdl
from api.cloudstack.table import APIS
from api.domain.keys import ApiKey
from api.uow import ApiUnitOfWork
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply
from directdl.runtime import db
from directdl.runtime.migrate import upgrade

pytestmark = pytest.mark.unit

KEY, SECRET = "test-key", "test-secret"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class ScriptedBus:
    """Answers each routing key as the test says, and remembers what was sent."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply | ApiError] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def ask_raw(
        self, routing_key: str, body: bytes, message_id: str | None, timeout: float
    ) -> Reply:
        self.sent.append((routing_key, json.loads(body)))
        answer = self.replies.get(routing_key, Reply.success({}))
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def ask(self, command: Any, message_id: str | None, timeout: float) -> Reply:
        return self.ask_raw(command.routing_key, command.model_dump_json().encode(), message_id, 0)

    def call(self, command: Any, message_id: str | None = None) -> dict[str, Any]:
        reply = self.ask(command, message_id, 0)
        if not reply.ok:
            assert reply.error is not None
            raise from_directdl(reply.error)
        return reply.result or {}


@pytest.fixture
def bus() -> ScriptedBus:
    scripted = ScriptedBus()
    scripted.replies["host.list"] = Reply.success({"items": []})
    scripted.replies["zone.list"] = Reply.success({"items": []})
    return scripted


@pytest.fixture
def app(tmp_path: Path, bus: ScriptedBus) -> CloudStackApp:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(MIGRATIONS, url)
    box = SecretBox(SecretBox.new_key())
    unit_of_work = partial(ApiUnitOfWork, db.session_factory(db.make_engine(url)), box)
    with unit_of_work() as uow:
        uow.keys.add(ApiKey("ops", KEY, SECRET, NOW))
        uow.keys.add(ApiKey("gone", "revoked-key", SECRET, NOW))
        uow.keys.revoke("revoked-key", NOW)
        uow.commit()
    clock = lambda: NOW  # noqa: E731
    return CloudStackApp(
        APIS,
        bus,
        JobDesk(unit_of_work, clock),
        KeyBook(unit_of_work, clock),
        clock,  # type: ignore[arg-type]
    )


def signed(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    """As cs 5.2.0 signs: its params sorted, quote(value, safe="*"), lower-cased, HMAC-SHA1."""
    params = {"apiKey": KEY, "response": "json", **params}
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(params.items())).lower()
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return params | {"signature": base64.b64encode(digest).decode()}


def request(
    app: CloudStackApp, params: dict[str, str], method: str = "GET", path: str = "/client/api"
) -> tuple[int, dict[str, str], Any]:
    encoded = urlencode(params).encode()
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path}
    if method == "POST":
        environ |= {
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(encoded)),
            "wsgi.input": io.BytesIO(encoded),
            "QUERY_STRING": "",
        }
    else:
        environ["QUERY_STRING"] = encoded.decode()
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.update(status=int(status.split(maxsplit=1)[0]), headers=dict(headers))

    body = b"".join(app(environ, start_response))
    content_type = started["headers"]["Content-Type"]
    parsed = json.loads(body) if content_type.startswith("application/json") else body.decode()
    return started["status"], started["headers"], parsed


def test_a_request_signed_as_cs_signs_it_is_served_by_get_and_by_post(
    app: CloudStackApp,
) -> None:
    for method in ("GET", "POST"):
        status, headers, body = request(app, signed({"command": "listZones"}), method)
        assert status == 200, body
        assert headers["Content-Type"] == "application/json; charset=UTF-8"
        assert body == {"listzonesresponse": {}}


@pytest.mark.parametrize(
    ("params", "key"),
    [
        (signed({"command": "listZones"}, secret="wrong"), "listzonesresponse"),
        ({**signed({"command": "listZones"}), "apiKey": "revoked-key"}, "listzonesresponse"),
        (
            {k: v for k, v in signed({"command": "listZones"}).items() if k != "signature"},
            "listzonesresponse",
        ),
        (
            signed(
                {
                    "command": "listZones",
                    "signatureVersion": "3",
                    "expires": "2026-12-04T11:00:00+0000",
                }
            ),
            "listzonesresponse",
        ),
        (signed({"command": "listZones", "signatureVersion": "3"}), "listzonesresponse"),
        (signed({"command": "deployVirtualMachine"}), "errorresponse"),
        ({"command": "listZones", "response": "json"}, "listzonesresponse"),
    ],
    ids=[
        "bad-secret",
        "revoked",
        "no-signature",
        "expired",
        "v3-no-expires",
        "unknown",
        "unsigned",
    ],
)
def test_every_authentication_failure_is_cloudstacks_one_401(
    app: CloudStackApp, params: dict[str, str], key: str
) -> None:
    status, _, body = request(app, params)
    assert status == 401
    assert body == {
        key: {
            "uuidList": [],
            "errorcode": 401,
            "errortext": "unable to verify user credentials and/or request signature",
        }
    }


def test_a_revoked_key_that_signs_correctly_is_still_refused(app: CloudStackApp) -> None:
    params = {"apiKey": "revoked-key", "command": "listZones", "response": "json"}
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(params.items())).lower()
    digest = hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).digest()
    status, _, _ = request(app, params | {"signature": base64.b64encode(digest).decode()})
    assert status == 401


def test_an_expires_in_the_future_in_every_form_clients_send_is_accepted(
    app: CloudStackApp,
) -> None:
    later = NOW + timedelta(minutes=10)
    for expires in (later.strftime("%Y-%m-%dT%H:%M:%S+0000"), later.strftime("%Y-%m-%dT%H:%M:%SZ")):
        params = signed({"command": "listZones", "signatureversion": "3", "expires": expires})
        assert request(app, params)[0] == 200, expires


def test_a_missing_parameter_is_431_in_cloudstacks_words(app: CloudStackApp) -> None:
    status, headers, body = request(app, signed({"command": "listTemplates"}))
    assert status == 431
    text = "Unable to execute API command listtemplates due to missing parameter templatefilter"
    assert body == {
        "listtemplatesresponse": {
            "uuidList": [],
            "errorcode": 431,
            "cserrorcode": 9999,
            "errortext": text,
        }
    }
    assert headers["X-Description"] == text


def test_only_direct_download_on_kvm_is_served_and_nothing_is_sent_otherwise(
    app: CloudStackApp, bus: ScriptedBus
) -> None:
    base = {"command": "registerTemplate", "name": "t", "url": "http://127.0.0.1/t.qcow2"}
    base |= {"format": "QCOW2", "zoneid": "zone-1"}
    status, _, body = request(app, signed(base | {"hypervisor": "XenServer"}))
    assert status == 431 and "KVM" in body["registertemplateresponse"]["errortext"]
    status, _, body = request(app, signed(base | {"hypervisor": "KVM", "directdownload": "false"}))
    assert status == 432 and "direct download" in body["errorresponse"]["errortext"]
    assert bus.sent == []


def test_directdls_refusal_carries_its_message_and_maps_to_cloudstacks_codes(
    app: CloudStackApp, bus: ScriptedBus
) -> None:
    bus.replies["template.register"] = Reply.failure(
        ErrorCode.INVALID_MESSAGE, "checksum 'abc' is not {ALGO}hex of a known algorithm"
    )
    params = {"command": "registerTemplate", "name": "t", "url": "http://127.0.0.1/t.qcow2"}
    params |= {"format": "QCOW2", "zoneid": "zone-1", "hypervisor": "KVM", "checksum": "abc"}
    status, _, body = request(app, signed(params))
    error = body["registertemplateresponse"]
    assert (status, error["errorcode"], error["cserrorcode"]) == (431, 431, 4350)
    assert "checksum 'abc'" in error["errortext"] and "INVALID_MESSAGE" in error["errortext"]


def test_the_bus_unreachable_is_534_and_never_a_stack_trace(
    app: CloudStackApp, bus: ScriptedBus
) -> None:
    bus.replies["host.list"] = ApiError(
        ApiErrorCode.RESOURCE_UNAVAILABLE,
        "directdl's message bus could not take host.list: connection refused",
        CsErrorCode.RESOURCE_UNAVAILABLE,
    )
    status, _, body = request(app, signed({"command": "listHosts"}))
    assert status == 534 and body["listhostsresponse"]["cserrorcode"] == 4380


def test_an_unexpected_failure_is_530_with_no_detail(app: CloudStackApp, bus: ScriptedBus) -> None:
    bus.replies["host.list"] = Reply.success({"items": "not a list"})
    status, _, body = request(app, signed({"command": "listHosts"}))
    assert status == 530
    text = body["listhostsresponse"]["errortext"]
    assert text == "Internal error executing command, please contact your system administrator"


def test_unknown_parameters_are_signed_and_ignored(app: CloudStackApp) -> None:
    params = signed({"command": "listZones", "listall": "true", "filter": "id,name"})
    assert request(app, params)[0] == 200


def test_non_printable_characters_are_refused_before_anything_is_sent(
    app: CloudStackApp, bus: ScriptedBus
) -> None:
    status, _, body = request(app, signed({"command": "listTemplates", "templatefilter": "a\x01"}))
    assert status == 431 and "non-printable" in body["listtemplatesresponse"]["errortext"]
    assert bus.sent == []


def test_other_methods_and_paths_are_refused(app: CloudStackApp) -> None:
    assert request(app, signed({"command": "listZones"}), method="PUT")[0] == 405
    assert request(app, signed({"command": "listZones"}), path="/client/other")[0] == 404


def test_each_answer_is_counted_by_api_and_status_and_unknown_names_are_one_series(
    app: CloudStackApp,
) -> None:
    def count(api: str, status: str) -> float:
        labels = {"service": "api", "api": api, "status": status}
        return REGISTRY.get_sample_value("directdl_api_requests_total", labels) or 0.0

    before = (count("listZones", "200"), count("listZones", "401"), count("unknown", "401"))
    request(app, signed({"command": "listZones"}))
    request(app, signed({"command": "listZones"}, secret="wrong"))
    request(app, signed({"command": "noSuchApi"}))
    after = (count("listZones", "200"), count("listZones", "401"), count("unknown", "401"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
