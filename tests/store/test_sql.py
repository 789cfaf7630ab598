"""The SQL store on SQLite and PostgreSQL: round-trip, idempotence, atomicity, export."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import StatementError

from redraft import CorrectionConfig, build_graph
from redraft.critics import SelfCritic
from redraft.errors import NotFoundError
from redraft.export import dpo_pairs, write_jsonl
from redraft.store import ExampleInfo, OutcomeInfo, RunInfo, SQLStore
from redraft.store.models import Base, CritiqueRow, Example, Round
from tests.graphs.helpers import KeywordCritic, scripted

OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nWrong city."


def _round(index, draft="d", critiques=()):
    return {
        "index": index,
        "draft": draft,
        "n_tokens": 3,
        "finish_reason": "stop",
        "gen_latency_s": 0.1,
        "critiques": [dict(c) for c in critiques],
    }


def _critique(passed=False, evidence=()):
    return {
        "critic": "self",
        "passed": passed,
        "score": float(passed),
        "feedback": "fb",
        "evidence": list(evidence),
        "question": None,
        "raw": None,
        "latency_s": 0.01,
    }


def test_migration_creates_the_models_schema(store_url):
    store = SQLStore(store_url)
    inspector = inspect(store.engine)
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys()), table.name
    SQLStore(store_url)  # opening again is a no-op upgrade


def test_graph_runs_round_trip_through_the_store(store_url):
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    graph = build_graph(
        llm=llm,
        critics=[SelfCritic(llm), KeywordCritic("Lyon")],
        config=CorrectionConfig(max_rounds=3),
        store=store_url,
        run_name="t",
    )
    out = graph.invoke({"prompt": "Capital of France?", "example_id": "q1", "labels": {"answer": "Paris"}})
    store = SQLStore(store_url)
    run = store.run(out["run_id"][:8])
    assert (run.name, run.model_id, run.config["max_rounds"]) == ("t", "scripted", 3)
    assert [c["name"] for c in run.critics] == ["self", "keyword"]
    [example] = list(store.examples(run.id))
    assert (example.key, example.labels) == ("q1", {"answer": "Paris"})
    assert [r.draft for r in example.rounds] == ["Lyon.", "Paris."]
    assert [[(c.critic, c.passed) for c in r.critiques] for r in example.rounds] == [
        [("self", False), ("keyword", False)],
        [("self", True), ("keyword", True)],
    ]
    assert example.rounds[0].critiques[1].evidence == [{"banned": "Lyon"}]
    assert (example.outcome.status, example.outcome.rounds_used, example.outcome.final) == (
        "accepted",
        2,
        "Paris.",
    )
    assert run.ended_at is not None


def test_recording_a_round_twice_keeps_one_copy(store_url):
    store = SQLStore(store_url)
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    ex = ExampleInfo(key="e", prompt="p")
    for _ in range(2):
        store.record_round(run_id, ex, _round(0, critiques=[_critique()]))
        store.record_round(
            run_id,
            ex,
            _round(1, critiques=[_critique(True)]),
            OutcomeInfo(status="accepted", rounds_used=2, final="d"),
        )
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Round)) == 2
        assert s.scalar(select(func.count()).select_from(CritiqueRow)) == 2
        assert s.scalar(select(func.count()).select_from(Example)) == 1


def test_a_failing_round_write_leaves_nothing_behind(store_url):
    store = SQLStore(store_url)
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    unserializable = _critique(evidence=[{"tensor": object()}])
    with pytest.raises((TypeError, StatementError), match="not JSON serializable"):
        store.record_round(run_id, ExampleInfo(key="e", prompt="p"), _round(0, critiques=[_critique(), unserializable]))
    with store.session() as s:
        for model in (Example, Round, CritiqueRow):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__


def test_a_critic_crash_mid_round_logs_no_half_round(store_url):
    class Exploding(KeywordCritic):
        def critique(self, items):
            raise RuntimeError("critic died")

    llm = scripted(["Lyon."], [BAD])
    graph = build_graph(llm=llm, critics=[SelfCritic(llm), Exploding("x")], store=store_url)
    with pytest.raises(RuntimeError, match="critic died"):
        graph.invoke({"prompt": "Capital of France?"})
    store = SQLStore(store_url)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Round)) == 0


def test_concurrent_writers_lose_no_rows(store_url):
    store = SQLStore(store_url)
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    errors = []

    def writer(w):
        try:
            for e in range(5):
                for r in range(3):
                    # Every writer also re-writes writer 0's rows: duplicates must be absorbed.
                    for key in {f"w{w}-e{e}", f"w0-e{e}"}:
                        store.record_round(run_id, ExampleInfo(key=key, prompt="p"), _round(r, critiques=[_critique()]))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Example)) == 8 * 5
        assert s.scalar(select(func.count()).select_from(Round)) == 8 * 5 * 3
        assert s.scalar(select(func.count()).select_from(CritiqueRow)) == 8 * 5 * 3


@pytest.mark.parametrize("fmt", ["standard", "conversational"])
def test_dpo_export_loads_as_a_trl_dataset(store_url, tmp_path, fmt):
    from datasets import Dataset

    llm = scripted(["Lyon.", "Paris.", "Rome.", "Madrid.", "Oslo?", "Oslo?"], [BAD, OK, OK, BAD, BAD, BAD])
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)], config=CorrectionConfig(max_rounds=2), store=store_url)
    graph.invoke({"prompt": "Capital of France?"})  # Lyon -> Paris: a pair
    graph.invoke({"prompt": "Capital of Italy?"})  # accepted at once: no pair
    graph.invoke({"prompt": "Capital of Spain?"})  # never passes: no pair
    run_id = graph.config["metadata"]["redraft_run_id"]
    path = tmp_path / "pairs.jsonl"
    assert write_jsonl(dpo_pairs(SQLStore(store_url), run_id, fmt=fmt), path) == 1
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    ds = Dataset.from_list(rows)
    assert ds.column_names == ["prompt", "chosen", "rejected", "redraft"]
    provenance = rows[0].pop("redraft")
    assert provenance["run_id"] == run_id and provenance["confirmed_by"] == "critics"
    assert (provenance["chosen_round"], provenance["rejected_round"]) == (1, 0)
    if fmt == "standard":
        assert rows == [{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}]
    else:
        assert rows[0]["prompt"] == [{"role": "user", "content": "Capital of France?"}]
        assert rows[0]["chosen"] == [{"role": "assistant", "content": "Paris."}]
        assert rows[0]["rejected"] == [{"role": "assistant", "content": "Lyon."}]


def test_unknown_run_id_names_recent_runs(store_url):
    store = SQLStore(store_url)
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    with pytest.raises(NotFoundError, match=f"matches no run; recent runs: {run_id[:8]}"):
        store.run("zzz")


def test_an_overlong_id_prefix_matches_nothing(store_url, tmp_path):
    """A 50,000-character prefix made a 500 in `serve` and a traceback in `show`."""
    from typer.testing import CliRunner

    from redraft import cli

    store = SQLStore(store_url)
    with pytest.raises(NotFoundError, match="50,000 characters"):
        store.run("a" * 50_000)
    with pytest.raises(NotFoundError, match="matches nothing"):
        store.experiment("a" * 65)
    if store_url.startswith("sqlite"):
        shown = CliRunner().invoke(cli.app, ["show", "a" * 50_000, "--db", store_url])
        assert shown.exit_code == 2 and "matches nothing" in shown.output
