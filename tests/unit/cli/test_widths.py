"""Tables on a narrow terminal: ids and names whole, other columns wrapped or hidden."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from directdl.cli import output, settings, templates
from directdl.cli.tables import fit

pytestmark = pytest.mark.unit

IDS = ("55b4e8f9-d1c2-4000-8000-000000000001", "55b4e8f9-d1c2-4000-8000-0000000000ff")
TEMPLATES = [
    {
        "id": template_id,
        "name": f"centos-9-stream-{n}",
        "format": "QCOW2",
        "template_type": "USER",
        "protocol": "https",
        "zone_ids": ["zone-1", "zone-2"],
        "checksum": "{SHA-256}" + "ab" * 32,
    }
    for n, template_id in enumerate(IDS)
]
SETTINGS = [
    {
        "name": "direct.download.certificate.background.task.interval",
        "value": "24",
        "unit": "hours",
        "default": "24",
        "owner": "sync-scheduler",
        "description": "How often hosts' trust stores are brought in line with their zone.",
    },
    {
        "name": "direct.download.socket.timeout",
        "value": "-5",
        "unit": "ms",
        "default": "5000",
        "owner": "host-agent",
        "description": "Socket timeout of a download.",
    },
]


def terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> io.StringIO:
    """What the CLI prints on a terminal `width` columns wide, without colours."""
    screen = io.StringIO()
    console = Console(
        file=screen,
        width=width,
        force_terminal=True,
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
    )
    monkeypatch.setattr(output, "out", console)
    return screen


@pytest.mark.parametrize("width", [80, 40])
def test_template_ids_and_names_are_whole_on_their_line(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    screen = terminal(monkeypatch, width)
    output.print_rows(TEMPLATES, templates.COLUMNS, caption="2 of 2, page 1")
    text = screen.getvalue()
    for template in TEMPLATES:
        line = next(line for line in text.splitlines() if template["id"] in line)
        assert template["name"] in line, text
    assert "…" not in text
    assert "hidden: " in text and "checksum" in text and "use --fields or -o json" in text


def test_at_80_columns_the_least_important_columns_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = terminal(monkeypatch, 80)
    output.print_rows(TEMPLATES, templates.COLUMNS)
    text = screen.getvalue()
    header = next(line for line in text.splitlines() if " id " in line)
    assert "format" in header and "checksum" not in header and "zone_ids" not in header
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "hidden: template_type, protocol, zone_ids, checksum;" in " ".join(text.split())


@pytest.mark.parametrize("width", [80, 40])
def test_setting_names_are_never_cut(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    screen = terminal(monkeypatch, width)
    output.print_rows(SETTINGS, settings.COLUMNS)
    text = screen.getvalue()
    for setting in SETTINGS:
        assert any(setting["name"] in line for line in text.splitlines()), text
    assert "…" not in text


def test_a_wide_terminal_shows_every_column_and_hides_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = terminal(monkeypatch, 200)
    output.print_rows(TEMPLATES, templates.COLUMNS)
    text = screen.getvalue()
    assert "{SHA-256}" + "ab" * 32 in text and "hidden" not in text


def test_fit_wraps_before_it_hides() -> None:
    long_text = "word " * 30
    layout = fit(("id", "description"), [[IDS[0], long_text]], 60)
    assert layout.columns == ("id", "description") and layout.hidden == ()
    assert layout.widths[0] == len(IDS[0]) and layout.total == 60
