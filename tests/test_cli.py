"""The command line: run/show/export with a scripted model, bad input, and the real demo."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.store import SQLStore
from tests.graphs.helpers import scripted

runner = CliRunner()
OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nIt is Paris."


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


def use_llm(monkeypatch, llm):
    monkeypatch.setattr(cli, "_load_llm", lambda model, device: llm)


def test_run_show_export_round_trip(monkeypatch, db, tmp_path):
    use_llm(monkeypatch, scripted(["Lyon.", "Paris."], [BAD, OK]))
    result = runner.invoke(cli.app, ["run", "--prompt", "Capital of France?", "--db", db])
    assert result.exit_code == 0, result.output
    assert "round 1: revision 1" in result.output and "accepted" in result.output
    [run] = SQLStore(f"sqlite:///{db}").runs()

    shown = runner.invoke(cli.app, ["show", run.id[:8], "--db", db])
    assert shown.exit_code == 0 and "Lyon." in shown.output and "Paris." in shown.output
    listed = runner.invoke(cli.app, ["show", "--db", db])
    assert run.id[:12] in listed.output

    out = tmp_path / "pairs.jsonl"
    exported = runner.invoke(cli.app, ["export", "dpo", run.id[:8], "-o", str(out), "--db", db, "--format", "standard"])
    assert exported.exit_code == 0 and "wrote 1 pairs" in exported.output
    row = json.loads(out.read_text())
    assert row.pop("redraft")["example"]
    assert row == {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}


def test_run_reads_jsonl_and_resumes_without_repeating_work(monkeypatch, db, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Capital of France?", "id": "fr"}\n\n{"prompt": "Capital of Italy?", "id": "it"}\n')

    def crash(conv):
        raise RuntimeError("killed")

    use_llm(monkeypatch, scripted(["Paris.", crash], [OK]))
    result = runner.invoke(cli.app, ["run", "--input", str(prompts), "--db", db, "--quiet"])
    assert isinstance(result.exception, RuntimeError)
    [run] = SQLStore(f"sqlite:///{db}").runs()

    resumed_llm = scripted(["Rome."], [OK])  # only the unfinished example may generate
    use_llm(monkeypatch, resumed_llm)
    result = runner.invoke(cli.app, ["run", "--input", str(prompts), "--db", db, "--resume", run.id[:8], "--quiet"])
    assert result.exit_code == 0, result.output
    assert resumed_llm.remaining == 0
    examples = {e.key: e for e in SQLStore(f"sqlite:///{db}").examples(run.id)}
    assert {k: [r.draft for r in e.rounds] for k, e in examples.items()} == {
        "fr": ["Paris."],
        "it": ["Rome."],
    }
    assert examples["fr"].source == "prompts.jsonl"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--prompt", "   "], "is empty"),
        (["run"], "nothing to run"),
        (
            ["run", "--prompt", "q", "--critic", "nope"],
            "known critics: bci, factuality, oracle, self, self-bias, self-error, self-harm",
        ),
        (["run", "--prompt", "q", "--critic", "bci"], "the bci critic needs an index: pass --index PATH"),
        (["run", "--prompt", "q", "--max-rounds", "0"], "greater than or equal to 1"),
        (["run", "--prompt", "q", "--mode", "refine"], "known modes: cac, feedback"),
        (["run", "--input", "/no/such/prompts.jsonl"], "does not exist"),
        (["run", "--prompt", "q", "--db", "sqlite:////no/such/dir/x.db"], "cannot open database"),
        (["show", "nope"], "matches no run"),
        (
            ["export", "dpo", "x", "-o", "p.jsonl", "--format", "xml"],
            "known formats: conversational, standard",
        ),
    ],
)
def test_bad_input_exits_2_with_the_problem_and_nothing_generated(monkeypatch, db, args, message):
    llm = scripted([], [])
    use_llm(monkeypatch, llm)
    if "--db" not in args:
        args = [*args, "--db", db]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert llm.calls == []


def test_missing_model_path_is_named(db):
    result = runner.invoke(cli.app, ["run", "--prompt", "q", "--model", "/no/such/model", "--db", db])
    assert result.exit_code == 2
    assert "/no/such/model does not exist" in " ".join(result.output.split())


@pytest.mark.llm
def test_demo_runs_on_the_embedded_model(db):
    result = runner.invoke(cli.app, ["demo", "--db", db, "--max-rounds", "1", "--max-new-tokens", "12"])
    assert result.exit_code == 0, result.output
    [run] = SQLStore(f"sqlite:///{db}").runs()
    examples = list(SQLStore(f"sqlite:///{db}").examples(run.id))
    assert [e.prompt for e in examples] == list(cli.DEMO_PROMPTS)
    assert all(e.outcome is not None and len(e.rounds) == 1 for e in examples)
    assert "self-error" in result.output and "bci:" in result.output
    assert [c.critic for c in examples[0].rounds[0].critiques] == ["self-error", "bci"]
