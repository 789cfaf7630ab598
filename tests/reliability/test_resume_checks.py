"""Catalogue: ``--resume`` continues the run it names, or refuses, naming what differs.

Before, another ``--model``, other critics, another ``--max-rounds`` or another prompt under a
finished key were all accepted: new drafts landed under the old run's record, and prompts whose
keys were done were skipped unanswered.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.store import SQLStore
from tests.graphs.helpers import scripted, use_llm

runner = CliRunner()
OK = "VERDICT: CORRECT"


@pytest.fixture
def stopped_run(monkeypatch, tmp_path):
    """A run of two prompts stopped after the first finished: (db, prompts file, run id)."""
    db, prompts = str(tmp_path / "r.db"), tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Capital of France?", "id": "fr"}\n{"prompt": "Capital of Italy?", "id": "it"}\n')

    def crash(conv):
        raise RuntimeError("killed")

    use_llm(monkeypatch, scripted(["Paris.", crash], [OK]))
    args = ["run", "--input", str(prompts), "--db", db, "--quiet", "--batch-size", "1"]
    assert isinstance(runner.invoke(cli.app, args).exception, RuntimeError)
    [run] = SQLStore(f"sqlite:///{db}").runs()
    return db, prompts, run.id


def resume(db, prompts, run_id, *extra):
    args = ["run", "--input", str(prompts), "--db", db, "--quiet", *extra]
    return runner.invoke(cli.app, [*args, "--resume", run_id[:8]])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-rounds", "5"], "config max_rounds=3, and this one asks for max_rounds=5"),
        (["--critic", "self-harm"], "critics ['self'], and this one asks for ['self-harm']"),
        (["--mode", "cac"], "config mode='fresh', and this one asks for mode='cac'"),
    ],
)
def test_resume_with_other_options_is_refused_by_name(monkeypatch, stopped_run, extra, message):
    db, prompts, run_id = stopped_run
    llm = scripted(["Rome."], [OK])
    use_llm(monkeypatch, llm)
    result = resume(db, prompts, run_id, *extra)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"cannot resume run {run_id[:8]}" in text and message in text
    assert llm.remaining == 2  # nothing generated
    assert [len(e.rounds) for e in SQLStore(f"sqlite:///{db}").examples(run_id)] == [1]


def test_resume_with_another_model_is_refused(monkeypatch, stopped_run):
    db, prompts, run_id = stopped_run
    use_llm(monkeypatch, scripted(["Rome."], [OK], model_id="another-model"))
    result = resume(db, prompts, run_id)
    assert result.exit_code == 2 and "model 'scripted', and this one asks for 'another-model'" in " ".join(
        result.output.split()
    )


def test_resume_with_another_prompt_under_a_recorded_key_is_refused(monkeypatch, stopped_run, tmp_path):
    db, _, run_id = stopped_run
    other = tmp_path / "other.jsonl"
    other.write_text('{"prompt": "Capital of Spain?", "id": "fr"}\n{"prompt": "Capital of Italy?", "id": "it"}\n')
    llm = scripted(["Madrid."], [OK])
    use_llm(monkeypatch, llm)
    result = resume(db, other, run_id)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "example 'fr' was recorded for the prompt 'Capital of France?'" in text
    assert llm.remaining == 2


def test_resume_with_the_same_options_finishes_the_run(monkeypatch, stopped_run):
    db, prompts, run_id = stopped_run
    llm = scripted(["Rome."], [OK])
    use_llm(monkeypatch, llm)
    result = resume(db, prompts, run_id)
    assert result.exit_code == 0, result.output
    drafts = {e.key: [r.draft for r in e.rounds] for e in SQLStore(f"sqlite:///{db}").examples(run_id)}
    assert drafts == {"fr": ["Paris."], "it": ["Rome."]}
