"""`-o table|json|csv|tsv|text`, `--fields`, JSON errors, `-5` as a value, version, completion."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from types import TracebackType
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from directdl.bus.client import ReplyTimeout
from directdl.cli import main, session, templates
from directdl.contracts.base import Command
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply
from directdl.contracts.settings import UpdateSetting
from directdl.contracts.template import GetTemplate, ListTemplates

pytestmark = pytest.mark.unit

IDS = ("55b4e8f9-d1c2-4000-8000-000000000001", "55b4e8f9-d1c2-4000-8000-000000000002")
UNREACHABLE_URL = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1


def template(template_id: str, name: str) -> dict[str, Any]:
    return {
        "id": template_id,
        "name": name,
        "format": "QCOW2",
        "template_type": "USER",
        "protocol": "https",
        "zone_ids": ["zone-1", "zone-2"],
        "checksum": "{SHA-256}" + "ab" * 32,
    }


TEMPLATES = [template(IDS[0], "centos-9"), template(IDS[1], "debian, 12\tstable")]


class ScriptedBus:
    """A BusClient that answers each command with what `answer` makes of it."""

    answer: Callable[[Command], Reply] = staticmethod(lambda command: Reply.success({}))
    sent: list[Command] = []

    def __init__(self, *_: Any) -> None:
        pass

    def __enter__(self) -> ScriptedBus:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def call(self, command: Command, timeout: float) -> Reply:
        ScriptedBus.sent.append(command)
        return ScriptedBus.answer(command)


def answering(monkeypatch: pytest.MonkeyPatch, answer: Callable[[Command], Reply]) -> None:
    monkeypatch.setattr(ScriptedBus, "answer", staticmethod(answer))
    monkeypatch.setattr(ScriptedBus, "sent", [])
    monkeypatch.setattr(session, "BusClient", ScriptedBus)


def catalogue(command: Command) -> Reply:
    if isinstance(command, ListTemplates):
        items = [
            t
            for t in TEMPLATES
            if command.name in (None, t["name"]) and t["id"].startswith(command.id_prefix or "")
        ]
        return Reply.success({"items": items, "total": len(items), "page": 1, "page_size": 50})
    if isinstance(command, GetTemplate) and command.id == IDS[0]:
        return Reply.success({"template": TEMPLATES[0]})
    return Reply.failure(ErrorCode.NOT_FOUND, f"no template {getattr(command, 'id', '')!r}")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main.app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def templates_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIRECTDL_OUTPUT", raising=False)
    answering(monkeypatch, catalogue)


@pytest.mark.usefixtures("templates_known")
class TestFormats:
    def test_piped_table_has_no_borders_and_a_row_a_line(self) -> None:
        text = run("template", "list").stdout
        assert not {c for c in text if 0x2500 <= ord(c) <= 0x257F}, text
        rows = [line for line in text.splitlines() if IDS[0] in line or IDS[1] in line]
        assert len(rows) == 2 and "centos-9" in rows[0] and "QCOW2" in rows[0], text
        assert "2 of 2, page 1" in text

    def test_json_is_the_reply(self) -> None:
        for args in (["-o", "json"], ["--json"], ["--output=json"]):
            result = run("template", "list", *args)
            assert result.exit_code == 0
            assert json.loads(result.stdout)["result"]["items"] == TEMPLATES

    def test_csv_quotes_what_needs_it(self) -> None:
        rows = list(csv.reader(io.StringIO(run("template", "list", "-o", "csv").stdout)))
        assert rows[0] == list(templates.COLUMNS)
        assert rows[2][:2] == [IDS[1], "debian, 12\tstable"]
        assert rows[1][5] == "zone-1, zone-2"

    def test_tsv_is_a_line_a_row_with_tabs_inside_values_made_spaces(self) -> None:
        lines = run("template", "list", "-o", "tsv").stdout.splitlines()
        assert [line.split("\t")[:2] for line in lines] == [
            ["id", "name"],
            [IDS[0], "centos-9"],
            [IDS[1], "debian, 12 stable"],
        ]

    def test_text_is_key_value_lines_a_blank_line_between_records(self) -> None:
        text = run("template", "list", "-o", "text", "--fields", "name,id").stdout
        assert (
            text == f"name = centos-9\nid = {IDS[0]}\n\nname = debian, 12\tstable\nid = {IDS[1]}\n"
        )

    def test_a_record_in_each_format(self) -> None:
        show = ("template", "show", IDS[0])
        assert f"id = {IDS[0]}\n" in run(*show, "-o", "text").stdout
        assert (
            run(*show, "-o", "tsv", "--fields", "id,format").stdout
            == f"id\tformat\n{IDS[0]}\tQCOW2\n"
        )
        assert list(csv.reader(io.StringIO(run(*show, "-o", "csv").stdout)))[1][0] == IDS[0]
        assert IDS[0] in run(*show).stdout

    def test_fields_pick_and_order_columns(self) -> None:
        text = run("template", "list", "-o", "csv", "--fields", "name, id").stdout
        assert text.splitlines() == [
            "name,id",
            f"centos-9,{IDS[0]}",
            f'"debian, 12\tstable",{IDS[1]}',
        ]
        plain = run("template", "list", "--fields", "checksum").stdout
        assert "{SHA-256}" + "ab" * 32 in plain and IDS[0] not in plain

    def test_fields_with_json_keep_only_those_keys_in_that_order(self) -> None:
        result = run("template", "list", "-o", "json", "--fields", "name,id")
        reply = json.loads(result.stdout)
        assert reply["result"]["items"] == [{"name": t["name"], "id": t["id"]} for t in TEMPLATES]
        assert list(reply["result"]["items"][0]) == ["name", "id"]
        assert reply["result"]["total"] == 2

    def test_an_unknown_field_is_a_usage_error_naming_the_known_ones(self) -> None:
        result = CliRunner().invoke(main.app, ["template", "list", "--fields", "id,nope"])
        assert result.exit_code == 2
        assert "'nope'" in result.output and "template_type" in result.output
        assert IDS[0] not in result.output

    def test_an_unknown_field_with_json_is_a_json_error(self) -> None:
        result = run("template", "list", "-o", "json", "--fields", "nope")
        assert result.exit_code == 2
        error = json.loads(result.stdout)
        assert error["ok"] is False and error["error"]["code"] == "USAGE"
        assert "'nope'" in error["error"]["message"] and "checksum" in error["error"]["message"]

    def test_the_environment_gives_the_default_and_o_overrides_it(self) -> None:
        env = {"DIRECTDL_OUTPUT": "tsv"}
        assert run("template", "list", env=env).stdout.startswith("id\tname\t")
        assert run("template", "list", "-o", "csv", env=env).stdout.startswith("id,name,")

    def test_an_unknown_format_is_a_usage_error(self) -> None:
        result = CliRunner().invoke(main.app, ["template", "list", "-o", "yaml"])
        assert result.exit_code == 2
        assert "yaml" in result.output


class TestJsonErrors:
    """With -o json, every error is `{"ok": false, "error": {code, message, details}}`."""

    @staticmethod
    def error_of(result: Result, exit_code: int) -> dict[str, Any]:
        assert result.exit_code == exit_code, result.output
        reply = json.loads(result.stdout)
        assert set(reply) == {"ok", "error"} and reply["ok"] is False
        assert set(reply["error"]) == {"code", "message", "details"}
        error: dict[str, Any] = reply["error"]
        return error

    def test_an_error_reply(self, templates_known: None) -> None:
        error = self.error_of(run("template", "show", "nope", "-o", "json"), 1)
        assert error["code"] == "NOT_FOUND"

    def test_an_unreachable_broker(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMQP_URL", UNREACHABLE_URL)
        error = self.error_of(run("template", "list", "-o", "json"), 4)
        assert error["code"] == "UNREACHABLE" and "127.0.0.1:1" in error["message"]

    def test_no_reply_in_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def silent(command: Command) -> Reply:
            raise ReplyTimeout(f"no reply to {command.routing_key} within 1 s")

        answering(monkeypatch, silent)
        error = self.error_of(run("template", "list", "--json"), 3)
        assert error["code"] == "TIMEOUT" and "template.list" in error["message"]

    def test_a_usage_error_the_cli_finds_itself(self, templates_known: None) -> None:
        args = ["template", "register", "--name", "x", "--zone", "z", "--format", "QCOW2"]
        args += ["--url", "https://a.example/x.qcow2", "--detail", "no-equals-sign", "-o", "json"]
        error = self.error_of(run(*args), 2)
        assert error["code"] == "USAGE" and "KEY=VALUE" in error["message"]
        assert error["details"] == {"param": "--detail"}
        assert ScriptedBus.sent == []

    def test_a_usage_error_click_finds(self) -> None:
        error = self.error_of(run("template", "list", "--page", "0", "--json"), 2)
        assert "--page" in error["message"]

    def test_without_json_errors_stay_on_stderr(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMQP_URL", UNREACHABLE_URL)
        result = run("template", "list")
        assert result.exit_code == 4
        assert result.stdout == "" and "UNREACHABLE" in result.stderr


def test_a_negative_number_is_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    setting = {"name": "x", "value": "-5"}
    answering(monkeypatch, lambda command: Reply.success({"setting": setting}))
    result = run("settings", "set", "direct.download.socket.timeout", "-5", "-o", "json")
    assert result.exit_code == 0, result.output
    assert ScriptedBus.sent == [UpdateSetting(name="direct.download.socket.timeout", value="-5")]
    unknown = CliRunner().invoke(main.app, ["settings", "set", "a", "1", "--bogus"])
    assert unknown.exit_code == 2  # an option it does not know still fails


def test_json_is_shown_as_a_flag() -> None:
    text = run("template", "list", "--help", env={"COLUMNS": "200"}).stdout
    line = next(line for line in text.splitlines() if "--json" in line)
    assert "<bool>" not in line and "-o" in text and "--fields" in text
    top = run("--help", env={"COLUMNS": "200"}).stdout
    assert "<bool>" not in next(line for line in top.splitlines() if "--version" in line)


def test_version_is_the_installed_package_s() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"directdl {version('directdl')}\n"


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o"), ("zsh", "compdef")])
def test_completion_is_shown_for_the_shell_named(shell: str, marker: str) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "directdl")
    done = subprocess.run(
        [script, "--show-completion", shell],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout and "_DIRECTDL_COMPLETE" in done.stdout


def test_the_shell_s_completion_requests_are_answered() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "directdl")
    env = os.environ | {
        "_DIRECTDL_COMPLETE": "complete_bash",
        "COMP_WORDS": "directdl template list -o ",
        "COMP_CWORD": "4",
    }
    done = subprocess.run(
        [script], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["table", "json", "csv", "tsv", "text"]


@pytest.mark.parametrize(
    "path", [(), ("template",), ("template", "list"), ("cert", "upload"), ("status",)]
)
def test_no_help_shows_a_flag_as_taking_a_value(path: tuple[str, ...]) -> None:
    text = run(*path, "--help", env={"COLUMNS": "200"}).stdout
    assert "--help" in text and "<bool>" not in text
