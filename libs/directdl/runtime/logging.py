"""structlog, configured once per process: JSON off a TTY, a short console line on one."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

FORMAT_VARIABLE = "DIRECTDL_LOG_FORMAT"
FORMATS = ("json", "console")
# Bound to every delivery's log lines: what correlates JSON logs, noise on a console line.
CONTEXT_KEYS = frozenset(
    {"service", "message_id", "correlation_id", "routing_key", "timestamp", "level", "logger"}
)
LEVEL_COLOURS = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[31m"}
RESET = "\033[0m"


class LogFormatError(ValueError):
    """DIRECTDL_LOG_FORMAT holds something other than json or console."""


def log_format(env: Mapping[str, str], stream: TextIO) -> str:
    """`json` or `console`: DIRECTDL_LOG_FORMAT when set, else console on a TTY only."""
    chosen = env.get(FORMAT_VARIABLE, "").strip().lower()
    if not chosen:
        return "console" if stream.isatty() else "json"
    if chosen not in FORMATS:
        raise LogFormatError(
            f"{FORMAT_VARIABLE}={env[FORMAT_VARIABLE]!r} is not a log format: "
            f"use {' or '.join(FORMATS)}, or leave it unset to choose by the terminal"
        )
    return chosen


def short_line(event: Mapping[str, Any], *, colour: bool = False) -> str:
    """`event key=value ...` without the context every line carries; warnings and errors
    say their level first, so that they stand out in a stream of info lines."""
    level = str(event.get("level", "info"))
    fields = " ".join(
        f"{k}={v}"
        for k, v in event.items()
        if k not in CONTEXT_KEYS and k not in ("event", "exception") and v is not None
    )
    text = " ".join(part for part in (str(event.get("event", "")), fields) if part)
    if level in LEVEL_COLOURS:
        text = f"{level}: {text}"
        if colour:
            text = f"{LEVEL_COLOURS[level]}{text}{RESET}"
    if event.get("exception"):
        text = f"{text}\n{event['exception']}"
    return text


class ShortConsoleRenderer:
    """The console format: the time (to the second), then `short_line`."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, _logger: Any, _name: str, event: structlog.typing.EventDict) -> str:
        stamp = str(event.get("timestamp", ""))
        # The ISO stamp's HH:MM:SS: a console reader wants the time of day, not the zone.
        clock = stamp[11:19] if len(stamp) >= 19 else stamp
        return f"{clock} {short_line(event, colour=self.colour)}".strip()


def configure_logging(
    service: str, level: str = "INFO", env: Mapping[str, str] | None = None
) -> None:
    """Set up structlog and route stdlib logging (pika, alembic) through it. An invalid
    DIRECTDL_LOG_FORMAT stops the process with one line naming it, before anything starts."""
    try:
        chosen = log_format(os.environ if env is None else env, sys.stderr)
    except LogFormatError as err:
        raise SystemExit(f"{service}: {err}") from err
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        ShortConsoleRenderer(colour=sys.stderr.isatty())
        if chosen == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika logs every connection step at INFO; our own reconnect logs say what matters.
    logging.getLogger("pika").setLevel(logging.WARNING)
    # It also warns for every event nobody is bound to; the outbox relay logs those itself.
    logging.getLogger("pika.adapters.blocking_connection").setLevel(logging.ERROR)
    # alembic says each migration step it takes at every start; a failed one raises anyway.
    if root.level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)
