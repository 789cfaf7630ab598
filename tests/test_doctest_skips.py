"""Every docstring example that is not run says what it needs (the suite's summary lists them)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SKIP_REASON

PACKAGE = Path(__file__).resolve().parents[1] / "redraft"


def test_every_skipped_docstring_example_says_what_it_needs():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "doctest: +SKIP" in line and not SKIP_REASON.search(line):
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{n}")
    assert not missing, f"add '# needs: <what>' before '# doctest: +SKIP' on: {missing}"
