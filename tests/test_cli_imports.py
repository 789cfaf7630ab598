"""The command line answers at once: help, listings and usage errors import none of the heavy
libraries (torch, transformers, LangGraph, SQLAlchemy, numba); a command loads them when it runs.

Before, every command paid ~4 s of imports (torch alone 2.2 s), so a typo's error took as long.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "langgraph", "sqlalchemy", "numba")

PROBE = """
import json, sys
from redraft.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
except Exception as exc:  # a usage error: click raises it without standalone mode
    print(type(exc).__name__, file=sys.stderr)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_by(*args: str) -> list[str]:
    """The heavy modules in ``sys.modules`` after ``redraft ARGS`` ran in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["show", "--help"],
        ["experiment", "run", "--help"],
        ["export", "dpo", "--help"],
        ["index", "build", "--help"],
        ["data", "list"],
        ["run", "--max-rounds", "0", "--prompt", "q"],  # a usage error (click's range check)
        ["run", "--prompt", "   "],  # input validation: an empty prompt
    ],
)
def test_help_listings_and_usage_errors_import_nothing_heavy(args):
    assert loaded_by(*args) == []


def test_a_command_that_runs_still_loads_what_it_needs(tmp_path):
    assert "sqlalchemy" in loaded_by("show", "--db", str(tmp_path / "missing.db"))
