"""The README's generated tables: fresh, complete, and naming every variable the code reads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from api.config import ApiSettings
from certificate.config import CertificateSettings
from directdl.contracts.errors import ErrorCode
from directdl.runtime import docs, readme
from directdl.runtime.settings import ServiceSettings
from host_agent.config import HostAgentSettings
from registration.config import RegistrationSettings
from sync_scheduler.config import SchedulerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "libs", ROOT / "services"]
# A read of one variable: os.environ.get / [] / setdefault / pop, os.getenv, typer's envvar=.
READ = re.compile(r"environ\.(?:get|setdefault|pop)\(|getenv\(|environ\[|envvar\s*=")
# The system's own, passed on to child processes; not directdl's to document.
NOT_OURS = {"PATH"}
NAMED = re.compile(
    r"""(?:environ\.(?:get|setdefault|pop)\(|getenv\(|environ\[|envvar\s*=)\s*"""
    r"""(?:["']([A-Za-z0-9_]+)["']|([A-Z][A-Z0-9_]*)\b)"""
)


def reads_in(text: str) -> tuple[set[str], list[str]]:
    """The variables a source text reads by name, as a literal or a constant of that module,
    and the reads whose name this cannot tell."""
    named: set[str] = set()
    unnamed: list[str] = []
    for found in READ.finditer(text):
        literal = NAMED.match(text, found.start())
        name = None if literal is None else literal[1] or constant(text, literal[2])
        if name is None:
            unnamed.append(text[found.start() :].partition("\n")[0][:60])
        else:
            named.add(name.upper())
    return named, unnamed


def constant(text: str, name: str) -> str | None:
    """The string a module-level `NAME = "..."` gives, in the module or in the directdl
    module it imports NAME from."""
    found = re.search(rf"""^{name}(?:\s*:\s*\w+)?\s*=\s*["']([A-Za-z0-9_]+)["']""", text, re.M)
    if found is not None:
        return found[1]
    # Within the one import statement: a parenthesised list, or the rest of its line.
    imported = re.search(
        rf"^from (directdl[\w.]*) import (?:\([^)]*|[^(\n]*)\b{name}\b", text, re.M
    )
    if imported is None:
        return None
    module = ROOT / "libs" / (imported[1].replace(".", "/") + ".py")
    return constant(module.read_text(encoding="utf-8"), name) if module.is_file() else None


def code_reads() -> tuple[dict[str, list[str]], list[str]]:
    """Every variable libs/ and services/ read by name, with where; and the unnamed reads."""
    where: dict[str, list[str]] = {}
    unnamed: list[str] = []
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            named, others = reads_in(path.read_text(encoding="utf-8"))
            shown = str(path.relative_to(ROOT))
            for name in named:
                where.setdefault(name, []).append(shown)
            unnamed += [f"{shown}: {read}" for read in others]
    return where, unnamed


def settings_variables() -> set[str]:
    names: set[str] = set()
    for cls in readme.service_settings().values():
        for field in cls.model_fields:
            names.add(readme.env_name(cls, field) or f"{readme.prefix_of(cls)}{field}".upper())
    return names


def test_readme_tables_match_the_code() -> None:
    text = (ROOT / readme.README).read_text(encoding="utf-8")
    # A bare boolean keeps pytest from printing a diff of the whole README.
    fresh = readme.render(text) == text
    assert fresh, "README.md's generated tables are out of date: run `make docs`"


def test_settings_classes_are_found_through_the_entry_points() -> None:
    assert readme.service_settings() == {
        "api": ApiSettings,
        "certificate": CertificateSettings,
        "host-agent": HostAgentSettings,
        "registration": RegistrationSettings,
        "sync-scheduler": SchedulerSettings,
    }


def test_every_setting_field_has_a_description() -> None:
    missing = [
        f"{cls.__name__}.{field}"
        for cls in [ServiceSettings, *readme.service_settings().values()]
        for field in cls.model_fields
        if not readme.description(cls, field)
    ]
    assert not missing, f"give these Field(description=...), the README's meaning: {missing}"


def test_every_error_code_has_a_one_line_meaning() -> None:
    for code in ErrorCode:
        assert code.meaning.strip(), code
        assert "\n" not in code.meaning, code


def test_every_variable_the_code_reads_is_documented() -> None:
    where, _ = code_reads()
    documented = settings_variables() | {v.name for v in readme.DIRECT_VARIABLES} | NOT_OURS
    undocumented = {name: files for name, files in where.items() if name not in documented}
    assert not undocumented, (
        f"read but not in the README: {undocumented}; declare them in a settings class with a "
        "description, or add them to DIRECT_VARIABLES in libs/directdl/runtime/readme.py"
    )


def test_every_directly_read_variable_listed_is_still_read() -> None:
    where, _ = code_reads()
    for variable in readme.DIRECT_VARIABLES:
        assert variable.name in where, f"{variable.name} is no longer read: drop it"
        assert variable.name not in settings_variables(), f"{variable.name}: a settings field"


def test_every_read_names_its_variable() -> None:
    _, unnamed = code_reads()
    assert not unnamed, f"reads whose variable this test cannot name, so cannot check: {unnamed}"


def test_the_scan_finds_each_kind_of_read() -> None:
    text = (
        'os.environ.get("A_B", "x")\nos.getenv(\'c\')\nos.environ["D"]\n'
        'typer.Option(envvar="E")\nos.environ.get(name)\nenv = os.environ | {"F": "1"}\n'
        'G_ENV = "G"\nos.environ.get(G_ENV)\nos.getenv(UNDEFINED)\n'
    )
    named = {"A_B", "C", "D", "E", "G"}
    assert reads_in(text) == (named, ["environ.get(name)", "getenv(UNDEFINED)"])


def test_render_rewrites_only_the_blocks() -> None:
    blocks = "".join(
        f"<!-- generated: {name} -->\nstale\n<!-- end generated -->\n" for name in readme.tables()
    )
    text = f"# prose\n{blocks}more prose\n"
    rendered = readme.render(text)
    assert "stale" not in rendered
    assert rendered.startswith("# prose\n") and rendered.endswith("more prose\n")
    assert "| `NOT_FOUND` |" in rendered and "| `DIRECTDL_LOG_LEVEL` |" in rendered
    assert readme.render(rendered) == rendered


def test_render_refuses_a_readme_without_every_block() -> None:
    with pytest.raises(ValueError, match="missing \\['environment', 'settings'\\]"):
        readme.render("<!-- generated: error-codes -->\n<!-- end generated -->\n")
    with pytest.raises(ValueError, match="unknown \\['nonsense'\\]"):
        readme.render("<!-- generated: nonsense -->\n<!-- end generated -->\n")


def test_make_docs_check_fails_on_a_stale_readme_and_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / readme.README, tmp_path / readme.README)
    where = ["--out-dir", str(tmp_path), "--root", str(tmp_path)]
    assert docs.main(where) == 0
    path = tmp_path / readme.README
    fresh = path.read_text(encoding="utf-8")
    path.write_text(fresh.replace("| `NOT_FOUND` |", "| `GONE` |"), encoding="utf-8")
    capsys.readouterr()

    assert docs.main(["--check", *where]) == 1
    assert "README.md is out of date: run `make docs`" in capsys.readouterr().err
    assert docs.main(where) == 0
    assert path.read_text(encoding="utf-8") == fresh
