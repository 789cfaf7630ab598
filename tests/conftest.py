"""Shared fixtures: the embedded model (loaded once) and store URLs for SQLite and PostgreSQL."""

from __future__ import annotations

import doctest
import gc
import os
import re
import uuid
from collections.abc import Iterator

import pytest

from redraft.agents.base import LLM

POSTGRES_ENV = "REDRAFT_TEST_POSTGRES_URL"
SKIP_REASON = re.compile(r"#\s*needs:\s*(.+?)\s*#\s*doctest:\s*\+SKIP")
"""A docstring example that cannot run here says why on its own line: ``# needs: a GPU  # doctest: +SKIP``."""
_SKIPPED = pytest.StashKey[list[tuple[str, str]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collect the docstring examples marked +SKIP, with their reasons, for the summary."""
    skipped = []
    for item in items:
        test = getattr(item, "dtest", None)
        if test is None:
            continue
        for example in test.examples:
            if example.options.get(doctest.SKIP):
                found = SKIP_REASON.search(example.source)
                where = f"{os.path.relpath(test.filename or '?')}:{(test.lineno or 0) + example.lineno + 1}"
                skipped.append((where, found.group(1) if found else "NO REASON GIVEN"))
    config.stash[_SKIPPED] = skipped


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Name every docstring example that did not run, and what it needs."""
    skipped = config.stash.get(_SKIPPED, [])
    if skipped:
        terminalreporter.section("docstring examples not run")
        for where, reason in skipped:
            terminalreporter.write_line(f"{where}: needs {reason}")


@pytest.fixture(scope="session")
def embedded_llm() -> LLM:
    """The real embedded SmolLM2-135M, loaded once per session (cached as safetensors)."""
    from redraft.agents.embedded import default_llm

    return default_llm()


def _postgres_db() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql+psycopg://user@127.0.0.1/postgres to run PostgreSQL tests")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"redraft_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        gc.collect()  # stores dropped by the test close their pools in their finalizers
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'redraft.db'}"
    else:
        yield from _postgres_db()
