"""Every Python block in the README and in the pages of ``docs/`` runs, as pasted, in a fresh
namespace: a block that uses a name it does not define fails here. Blocks run in order in one
scratch directory holding the small files they name (``corpus.jsonl``, ``beliefs.jsonl``), on the
embedded model."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
