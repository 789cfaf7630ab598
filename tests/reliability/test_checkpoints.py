"""Catalogue: a crafted LangGraph checkpoint must not run code on `redraft run --resume`.

Runs keep their checkpoint in the store, except a run with the ``human`` critic, whose pause
for a person lives in a LangGraph checkpoint beside the run log: these tests use that critic."""

from __future__ import annotations

import contextlib
import sqlite3

import ormsgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from typer.testing import CliRunner

from redraft import cli
from redraft.graphs.checkpoint import CheckpointError, StrictJSONSerializer, checkpoint_path
from redraft.store import SQLStore
from tests.graphs.helpers import scripted, use_llm

runner = CliRunner()
HUMAN_RUN = ["run", "--critic", "human", "--prompt", "Capital of France?"]
ACCEPT = "y\n\n"  # the person's verdict: pass, no feedback


def _payload(marker) -> bytes:
    """msgpack whose extension type tells LangGraph's reviver to call os.system(...)."""
    call = ormsgpack.packb(("os", "system", f"touch {marker}"))
    return ormsgpack.packb({"v": 1, "id": "x", "channel_values": ormsgpack.Ext(0, call)})


def _crashed_run(monkeypatch, tmp_path) -> tuple[str, str]:
    db = str(tmp_path / "cli.db")

    def crash(conv):
        raise RuntimeError("killed")

    use_llm(monkeypatch, scripted([crash], []))
    result = runner.invoke(cli.app, [*HUMAN_RUN, "--db", db, "--quiet"])
    assert isinstance(result.exception, RuntimeError)
    [run] = SQLStore(f"sqlite:///{db}").runs()
    return db, run.id


def test_the_payload_is_live_under_langgraphs_default_serializer(tmp_path):
    """The oracle for the test below: the same bytes do run code through the permissive default."""
    marker = tmp_path / "owned"
    JsonPlusSerializer().loads_typed(("msgpack", _payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["msgpack", "pickle"])
def test_resume_refuses_a_crafted_checkpoint_and_runs_nothing(monkeypatch, tmp_path, kind):
    db, run_id = _crashed_run(monkeypatch, tmp_path)
    marker = tmp_path / "owned"
    blob = _payload(marker) if kind == "msgpack" else b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    with sqlite3.connect(checkpoint_path(db)) as conn:
        changed = conn.execute("UPDATE checkpoints SET type = ?, checkpoint = ?", (kind, blob)).rowcount
    assert changed > 0
    use_llm(monkeypatch, scripted(["Paris."], []))
    result = runner.invoke(cli.app, [*HUMAN_RUN, "--db", db, "--resume", run_id[:8]], input=ACCEPT)
    assert result.exit_code == 2, result.output
    assert f"checkpoint holds a '{kind}' payload" in " ".join(result.output.split())
    assert not marker.exists()


def test_resume_still_works_through_the_strict_serializer(monkeypatch, tmp_path):
    db, run_id = _crashed_run(monkeypatch, tmp_path)
    with sqlite3.connect(checkpoint_path(db)) as conn:
        kinds = {k for (k,) in conn.execute("SELECT DISTINCT type FROM checkpoints")}
    assert kinds == {"json"}
    use_llm(monkeypatch, scripted(["Paris."], []))
    result = runner.invoke(cli.app, [*HUMAN_RUN, "--db", db, "--resume", run_id[:8]], input=ACCEPT)
    assert result.exit_code == 0, result.output
    [example] = SQLStore(f"sqlite:///{db}").examples(run_id)
    assert [r.draft for r in example.rounds] == ["Paris."]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["json", "msgpack", "pickle", "null", "bytes", ""]), payload=st.binary(max_size=200))
def test_fuzzed_checkpoint_payloads_raise_only_checkpoint_errors(kind, payload):
    with contextlib.suppress(CheckpointError):
        StrictJSONSerializer().loads_typed((kind, payload))
