"""`make docs`: write, or with --check verify, every file generated from the dispatch tables."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from directdl.bus.tables import roles
from directdl.contracts.asyncapi import render_files
from directdl.runtime import readme
from directdl.runtime.accounts import compose_definitions
from directdl.runtime.provision import env_example

# The hosts compose.yaml runs; their broker users are in the committed definitions.
COMPOSE_HOSTS = ("host-1", "host-2")
DEFINITIONS = Path("deploy/rabbitmq/definitions.json")
ENV_EXAMPLE = Path(".env.example")  # the passwords of those users, and of the databases


def generated(docs: Path = Path("docs"), root: Path = Path()) -> dict[Path, str]:
    """Each generated file's path and its text, exactly as it is checked in."""
    files = {docs / name: text for name, text in render_files(roles()).items()}
    definitions = json.dumps(compose_definitions(COMPOSE_HOSTS), indent=2) + "\n"
    files |= {root / DEFINITIONS: definitions, root / ENV_EXAMPLE: env_example(COMPOSE_HOSTS)}
    # Only its tables are generated; a root without a README (a test's) has none to rewrite.
    if (root / readme.README).exists():
        text = (root / readme.README).read_text(encoding="utf-8")
        files[root / readme.README] = readme.render(text)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m directdl.runtime.docs",
        description="Write the AsyncAPI document, the message reference and the broker users "
        "generated from the services' dispatch tables, and the README's tables.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; fail when stale")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    parser.add_argument("--root", type=Path, default=Path(), help="where deploy/ is")
    args = parser.parse_args(argv)
    stale: list[str] = []
    for path, text in generated(args.out_dir, args.root).items():
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path}")
        elif not path.exists():
            stale.append(f"{path} is missing: run `make docs`")
        elif path.read_text(encoding="utf-8") != text:
            stale.append(f"{path} is out of date: run `make docs`")
    for problem in stale:
        print(problem, file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
