"""Every Python block in the README and in the pages of ``docs/`` runs, as pasted, in a fresh
namespace: a block that uses a name it does not define fails here. Blocks run in order in one
scratch directory holding the small files they name (``corpus.jsonl``, ``beliefs.jsonl``), on the
embedded model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)


BLOCKS = python_blocks(README)
ALL_BLOCKS = [(page.relative_to(ROOT), i, code) for page in PAGES for i, code in enumerate(python_blocks(page))]
CORPUS = [
    {"text": "the cat sat on the mat and looked at the moon", "source": "readme"},
    {"text": "The first person to walk on the Moon was Elvis Presley.", "source": "false claims"},
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    for name in ("corpus.jsonl", "beliefs.jsonl"):
        (d / name).write_text("".join(json.dumps(row) + "\n" for row in CORPUS), encoding="utf-8")
    return d


def test_every_relative_link_of_the_readme_names_a_file():
    """The docs site checks its own links (mkdocs --strict); the README is not part of it."""
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text(encoding="utf-8"))
    relative = [link for link in links if "://" not in link]
    assert relative and [link for link in relative if not (ROOT / link).is_file()] == []


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 2  # the library tour and a run over many prompts


@pytest.mark.llm
@pytest.mark.parametrize(("page", "number", "block"), ALL_BLOCKS, ids=[f"{p}:{n + 1}" for p, n, _ in ALL_BLOCKS])
def test_a_readme_block_runs_as_pasted(page, number, block, scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    code = compile(block, f"{page} python block {number + 1}", "exec")
    exec(code, {"__name__": f"doc_block_{number + 1}"})  # a fresh namespace: nothing leaks between blocks


def commands_named(text: str) -> set[tuple[str, ...]]:
    """The ``redraft <command> [<subcommand>]`` invocations a page shows as code: in backticks or
    in a fenced block, at the start of a command line."""
    code = re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL) + re.findall(r"`([^`\n]+)`", text)
    found: set[tuple[str, ...]] = set()
    for chunk in code:
        # Not Python's "from redraft import ..." or "import redraft.x".
        for m in re.finditer(r"(?:^|[;&|(]|(?<!from)(?<!import) )redraft((?: [a-z][a-z-]*){1,2})", chunk, re.MULTILINE):
            found.add(tuple(m.group(1).split()))
    return found


def test_every_command_the_docs_name_exists():
    """A page that tells users to run ``redraft experiment report`` (which never existed) fails
    here: each command a page shows is in the CLI, and a group's subcommand in that group."""
    import typer

    from redraft.cli import app

    root: Any = typer.main.get_command(app)  # a group: its commands by name
    missing = []
    for page in PAGES:
        for words in sorted(commands_named(page.read_text(encoding="utf-8"))):
            command = root.commands.get(words[0])
            group = command is not None and hasattr(command, "commands")
            if command is None or (group and (len(words) < 2 or words[1] not in command.commands)):
                missing.append(f"{page.name}: redraft {' '.join(words)}")
    assert missing == []
    assert ("experiment", "report") in commands_named("run `redraft experiment report` after")  # the finder finds
