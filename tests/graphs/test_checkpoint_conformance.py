"""LangGraph's own checkpoint conformance suite (``langgraph-checkpoint-conformance``) on every
checkpointer redraft hands out or documents, with the strict JSON serializer, on SQLite and on
PostgreSQL; and the payloads that suite never sends (an exception a node raised, bytes, dates,
tuples)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.memory import InMemorySaver
from typing_extensions import TypedDict

from redraft.graphs.checkpoint import (
    CheckpointedError,
    CheckpointError,
    StrictJSONSerializer,
    sqlite_checkpointer,
)
from redraft.graphs.runs import checkpointer_for


def conformance(name: str, open_saver: Callable[[], AbstractContextManager[Any]]) -> Any:
    """Run the whole suite on fresh savers from ``open_saver``; the report."""

    @checkpointer_test(name=name)
    async def factory() -> AsyncIterator[Any]:
        with open_saver() as saver:
            yield saver

    return asyncio.run(validate(factory))


def assert_conformant(report: Any, base_tests: int) -> None:
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert report.passed_all(), failures
    ran = sum(r.tests_passed for r in report.results.values())
    assert ran >= base_tests  # the suite really ran (58 tests in 0.0.2), not zero capabilities


class _Memory(AbstractContextManager[Any]):
    def __enter__(self) -> Any:
        return InMemorySaver(serde=StrictJSONSerializer())

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_strict_serializer_is_conformant_in_memory():
    assert_conformant(conformance("InMemorySaver+strict", _Memory), 58)


def test_redraft_sqlite_checkpointer_is_conformant_sync_and_async(tmp_path):
    """redraft's SQLite checkpointer serves graph.invoke and graph.ainvoke (LangGraph's
    SqliteSaver fails the async half on every call)."""
    counter = iter(range(1_000))
    report = conformance("sqlite_checkpointer", lambda: sqlite_checkpointer(tmp_path / f"c{next(counter)}.sqlite"))
    assert_conformant(report, 58)


def test_the_checkpointer_of_a_sqlite_run_log_is_conformant(tmp_path):
    counter = iter(range(1_000))
    report = conformance(
        "checkpointer_for(sqlite)", lambda: checkpointer_for(f"sqlite:///{tmp_path}/r{next(counter)}.db")
    )
    assert_conformant(report, 58)


@pytest.mark.postgres
def test_the_checkpointer_of_a_postgres_run_log_is_conformant():
    from tests.conftest import _postgres_db

    urls = _postgres_db()
    url = next(urls)
    try:
        with checkpointer_for(url) as saver:
            assert type(saver.serde) is StrictJSONSerializer and "Postgres" in type(saver).__name__
        assert_conformant(conformance("checkpointer_for(postgres)", lambda: checkpointer_for(url)), 58)
    finally:
        urls.close()


# -- what the suite never sends ---------------------------------------------------------------------


class S(TypedDict):
    x: int


def _failing_graph(saver: Any) -> Any:
    from langgraph.graph import END, START, StateGraph

    def boom(state: S) -> S:
        raise RuntimeError("critic backend down")

    builder = StateGraph(S)
    builder.add_node("boom", boom)
    builder.add_edge(START, "boom")
    builder.add_edge("boom", END)
    return builder.compile(checkpointer=saver)


def test_a_nodes_exception_stays_visible_in_the_checkpoint(tmp_path):
    """LangGraph writes a node's exception to its __error__ channel; the strict serializer used to
    refuse it on a background thread, so get_state() showed no error at all."""
    cfg = {"configurable": {"thread_id": "t"}}
    with sqlite_checkpointer(tmp_path / "c.sqlite") as saver, pytest.raises(RuntimeError, match="backend down"):
        _failing_graph(saver).invoke({"x": 1}, cfg)
    with sqlite_checkpointer(tmp_path / "c.sqlite") as saver:  # read back by a new connection
        [task] = _failing_graph(saver).get_state(cfg).tasks
    assert isinstance(task.error, CheckpointedError)
    assert repr(task.error) == "RuntimeError('critic backend down')"  # what LangGraph's default serializer shows


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (b"\x00raw", "bytes"),
        (dt.datetime(2026, 12, 5, tzinfo=dt.UTC), "datetime"),
        ({1, 2}, "set"),
        (Path("."), "Path"),
    ],
)
def test_a_non_json_write_is_refused_naming_its_type_not_the_state(value, named):
    expected = rf"a checkpoint write cannot be stored as plain JSON \(a value of type \w*{named}\)"
    with pytest.raises(CheckpointError, match=expected):
        StrictJSONSerializer().dumps_typed({"draft": value})


def test_a_tuple_round_trips_as_a_list():
    serde = StrictJSONSerializer()
    assert serde.loads_typed(serde.dumps_typed({"pair": ("a", 1)})) == {"pair": ["a", 1]}
