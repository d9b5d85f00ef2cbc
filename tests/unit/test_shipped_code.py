"""What the wheel and the image ship imports nothing made for tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("libs", "services")
TEST_ONLY = ("directdl_testing", "pytest", "testcontainers")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_shipped_module_imports_test_helpers() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in SHIPPED
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in TEST_ONLY
    ]
    assert offenders == []
    assert not (ROOT / "libs/directdl/testing").exists(), "test helpers live in tests/support"
