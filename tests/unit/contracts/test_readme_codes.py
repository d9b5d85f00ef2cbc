"""The README's list of reply error codes is exactly the ErrorCode enum."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from directdl.contracts.errors import ErrorCode

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[3] / "README.md"


def codes_bullet(readme: str) -> str:
    """The text after "Codes:" up to the end of its bullet, in "The message contract"."""
    section = readme.split("\n## The message contract\n", 1)[1].split("\n## ", 1)[0]
    after = section.split("Codes:", 1)[1]
    return re.split(r"\n- ", after, maxsplit=1)[0]


def listed(readme: str) -> list[str]:
    return re.findall(r"`([A-Z][A-Z_]*)`", codes_bullet(readme))


def test_the_readme_names_every_reply_error_code_and_no_other() -> None:
    codes = listed(README.read_text())
    assert len(codes) == len(set(codes)), "a code is listed twice"
    assert set(codes) == {code.value for code in ErrorCode}


def test_the_list_is_read_from_that_bullet_alone() -> None:
    readme = README.read_text()
    dropped = readme.replace("`TIMEOUT`, ", "", 1)
    added = readme.replace("Codes: ", "Codes: `BOGUS`, ", 1)
    next_bullet = readme.replace("\n- Commands are", "\n- `ELSEWHERE`. Commands are", 1)
    assert "TIMEOUT" in listed(readme) and "TIMEOUT" not in listed(dropped)
    assert "BOGUS" in listed(added)
    assert "ELSEWHERE" not in listed(next_bullet) and "ELSEWHERE" in next_bullet
