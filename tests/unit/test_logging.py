"""The log format: DIRECTDL_LOG_FORMAT over the TTY choice, and the short console line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from directdl.launcher import ShortLines
from directdl.runtime.logging import (
    LogFormatError,
    ShortConsoleRenderer,
    configure_logging,
    log_format,
    short_line,
)

pytestmark = pytest.mark.unit


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    logging.getLogger("alembic").setLevel(logging.NOTSET)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize(("tty", "expected"), [(True, "console"), (False, "json")])
def test_unset_chooses_by_the_terminal(tty: bool, expected: str) -> None:
    assert log_format({}, Stream(tty)) == expected
    assert log_format({"DIRECTDL_LOG_FORMAT": ""}, Stream(tty)) == expected


@pytest.mark.parametrize("tty", [True, False])
@pytest.mark.parametrize("chosen", ["json", "console", "JSON", " console "])
def test_the_variable_overrides_the_terminal(chosen: str, tty: bool) -> None:
    assert log_format({"DIRECTDL_LOG_FORMAT": chosen}, Stream(tty)) == chosen.strip().lower()


def test_an_invalid_format_is_an_error_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(LogFormatError, match=r"DIRECTDL_LOG_FORMAT='xml'.*json or console"):
        log_format({"DIRECTDL_LOG_FORMAT": "xml"}, Stream(True))


def test_an_invalid_format_stops_the_process_with_one_line() -> None:
    with pytest.raises(SystemExit, match=r"^registration: DIRECTDL_LOG_FORMAT='yaml'"):
        configure_logging("registration", env={"DIRECTDL_LOG_FORMAT": "yaml"})


def test_json_is_written_when_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("registration", env={"DIRECTDL_LOG_FORMAT": "json"})
    structlog.get_logger().info("host.up", host_id="host-1")
    line = json.loads(capsys.readouterr().err)
    assert line["event"] == "host.up" and line["host_id"] == "host-1"
    assert line["service"] == "registration" and line["level"] == "info"


def test_console_is_the_time_the_event_and_its_own_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("registration", env={"DIRECTDL_LOG_FORMAT": "console"})
    structlog.get_logger().info("host.up", host_id="host-1", zone_id="zone-1")
    (line,) = capsys.readouterr().err.splitlines()
    clock, rest = line.split(" ", 1)
    assert len(clock) == 8 and clock.count(":") == 2, line
    assert rest == "host.up host_id=host-1 zone_id=zone-1"


def test_debug_lines_are_dropped_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("registration", "INFO", env={"DIRECTDL_LOG_FORMAT": "json"})
    structlog.get_logger().debug("message.handled", duration_ms=1.0)
    assert capsys.readouterr().err == ""


def test_a_short_line_leaves_out_the_context_every_line_carries() -> None:
    event = {
        "event": "deploy.ended",
        "deploy_id": "d-1",
        "service": "registration",
        "message_id": "m-1",
        "correlation_id": None,
        "routing_key": "template.download.completed",
        "level": "info",
        "timestamp": "2026-12-02T19:22:01.5Z",
        "pool_id": None,
    }
    assert short_line(event) == "deploy.ended deploy_id=d-1"


def test_warnings_and_errors_say_their_level_first() -> None:
    warning = {"event": "host.down", "host_id": "host-1", "level": "warning"}
    assert short_line(warning) == "warning: host.down host_id=host-1"
    assert short_line(warning, colour=True) == "\033[33mwarning: host.down host_id=host-1\033[0m"
    error = {"event": "task.failed", "level": "error", "exception": "Traceback ..."}
    assert short_line(error) == "error: task.failed\nTraceback ..."


def test_the_console_renderer_keeps_the_time_of_day() -> None:
    event = {"event": "service.ready", "timestamp": "2026-12-02T19:22:01.123Z", "queues": 3}
    assert (
        ShortConsoleRenderer(colour=False)(None, "info", event) == "19:22:01 service.ready queues=3"
    )


class Printed:
    """What honcho's Printer is given, and the width honcho sets on it."""

    def __init__(self) -> None:
        self.output = Stream(False)
        self.width = 0
        self.messages: list[object] = []

    def write(self, message: object) -> None:
        self.messages.append(message)


def test_make_run_prints_json_lines_short_and_anything_else_as_it_is() -> None:
    from honcho.printer import Message  # type: ignore[import-untyped]

    printed = Printed()
    lines = ShortLines(printed, raw=False)
    lines.width = 14
    event = {"event": "service.ready", "queues": 3, "service": "registration", "level": "info"}
    data = f"{json.dumps(event)}\nnginx: [emerg] bind() failed\n".encode()
    lines.write(Message("line", data, None, "registration", 31))
    (message,) = printed.messages
    assert message.data == "service.ready queues=3\nnginx: [emerg] bind() failed"  # type: ignore[attr-defined]
    assert printed.width == 14


def test_make_run_prints_lines_as_they_are_when_a_format_was_asked_for() -> None:
    from honcho.printer import Message

    printed = Printed()
    data = json.dumps({"event": "service.ready", "level": "info"})
    ShortLines(printed, raw=True).write(Message("line", data, None, "registration", 31))
    assert printed.messages[0].data == data  # type: ignore[attr-defined]
