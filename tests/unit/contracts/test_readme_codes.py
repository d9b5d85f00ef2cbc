"""The README's table of reply error codes is exactly the ErrorCode enum."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from directdl.contracts.errors import ErrorCode

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[3] / "README.md"


def codes_table(readme: str) -> str:
    """The generated block of the "Error codes" section."""
    section = readme.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    after = section.split("<!-- generated: error-codes -->\n", 1)[1]
    return after.split("<!-- end generated -->", 1)[0]


def listed(readme: str) -> list[str]:
    return re.findall(r"^\| `([A-Z][A-Z_]*)` \|", codes_table(readme), re.MULTILINE)


def test_the_readme_names_every_reply_error_code_and_no_other() -> None:
    codes = listed(README.read_text())
    assert len(codes) == len(set(codes)), "a code is listed twice"
    assert set(codes) == {code.value for code in ErrorCode}


def test_the_list_is_read_from_that_table_alone() -> None:
    readme = README.read_text()
    dropped = readme.replace("| `TIMEOUT` |", "| TIMEOUT |", 1)
    added = readme.replace("| --- | --- |\n| `", "| --- | --- |\n| `BOGUS` | x |\n| `", 1)
    after = readme.replace("<!-- end generated -->", "<!-- end generated -->\n| `ELSEWHERE` |", 1)
    assert "TIMEOUT" in listed(readme) and "TIMEOUT" not in listed(dropped)
    assert "BOGUS" in listed(added)
    assert "ELSEWHERE" not in listed(after) and "ELSEWHERE" in after
