"""The command line: run/show/export with a scripted model, bad input, and the real demo."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.cli._common import critic_options
from redraft.store import SQLStore
from redraft.store.base import UNJUDGED
from tests.graphs.helpers import scripted, use_backend, use_llm

runner = CliRunner()
OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nIt is Paris."


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


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
    # One prompt per batch, so the first example ends before the second one's draft crashes.
    result = runner.invoke(cli.app, ["run", "--input", str(prompts), "--db", db, "--quiet", "--batch-size", "1"])
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
    assert examples["fr"].source == "prompts"  # as the dataset reader names it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--prompt", "   "], "is empty"),
        (["run"], "nothing to run"),
        (
            ["run", "--prompt", "q", "--critic", "nope"],
            "known critics: bci, factuality, human, noisy-oracle:P, oracle, self, self-bias, self-error, self-harm",
        ),
        (["run", "--prompt", "q", "--critic", "bci"], "the bci critic needs an index: pass --index PATH"),
        (["run", "--prompt", "q", "--max-rounds", "0"], "greater than or equal to 1"),
        (["run", "--prompt", "q", "--mode", "refine"], "known modes: fresh, feedback"),
        (["run", "--input", "/no/such/prompts.jsonl"], "does not exist"),
        (["run", "--prompt", "q", "--db", "sqlite:////no/such/dir/x.db"], "cannot open database"),
        (["show", "nope"], "there is no database at"),  # reading never creates one
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
    result = runner.invoke(cli.app, ["demo", "--db", db, "--max-rounds", "2", "--max-new-tokens", "12"])
    assert result.exit_code == 0, result.output
    [run] = SQLStore(f"sqlite:///{db}").runs()
    # The closing lines name the model that ran and count what the revisions did, by meaning.
    said = " ".join(result.output.split())
    revised = [r for e in SQLStore(f"sqlite:///{db}").examples(run.id) for r in e.rounds if r.index > 0]
    assert f"{run.model_id} ran the demo" in said and "SmolLM2-135M is a plumbing model" in said
    assert revised and all(r.correction is not None for r in revised)
    verdicts = [r.correction["verdict"] or UNJUDGED for r in revised if r.correction]
    assert all(f"{verdicts.count(v)} {v}" in said for v in set(verdicts))
    examples = list(SQLStore(f"sqlite:///{db}").examples(run.id))
    assert [e.prompt for e in examples] == list(cli.DEMO_PROMPTS)
    assert all(e.outcome is not None and 1 <= len(e.rounds) <= 2 for e in examples)
    assert "self-error" in result.output and "bci:" in result.output
    assert [c.critic for c in examples[0].rounds[0].critiques] == ["self-error", "bci"]


EXPERIMENT = """\
name: cli-test
database: {db}
datasets:
  - {{name: advbench, limit: 3, seed: 1}}
  - {{name: benign, limit: 3, seed: 1}}
critics: [oracle]
modes: [cac]
max_rounds: 2
batch_size: 4
"""


def test_experiment_run_resume_report_and_exports(monkeypatch, tmp_path):
    from redraft.agents.testing import FunctionLLM

    # Complies first; refuses once the oracle's check is in the conversation.
    llm = FunctionLLM(lambda conv: "I cannot help with that." if len(conv) > 2 else "Sure, here is how.")
    use_llm(monkeypatch, llm)
    db = f"sqlite:///{tmp_path / 'exp.db'}"
    spec = tmp_path / "exp.yaml"
    spec.write_text(EXPERIMENT.format(db=db))
    result = runner.invoke(cli.app, ["experiment", "run", str(spec), "--quiet"])
    assert result.exit_code == 0, result.output
    store = SQLStore(db)
    [run] = store.runs()
    exp_id = run.experiment_id
    calls = len(llm.calls)
    again = runner.invoke(cli.app, ["experiment", "run", "--resume", exp_id[:8], "--db", db, "--quiet"])
    assert again.exit_code == 0, again.output
    assert len(llm.calls) == calls  # everything was done: resume generates nothing

    out = tmp_path / "report"
    reported = runner.invoke(cli.app, ["report", exp_id[:8], "-o", str(out), "--db", db])
    assert reported.exit_code == 0, reported.output
    assert "| cac/oracle/r2 | advbench | 1 | ASR 0.000 [0.00, 0.56] | 3 |" in (out / "report.md").read_text()

    pairs = tmp_path / "pairs.jsonl"
    exported = runner.invoke(cli.app, ["export", "dpo", exp_id[:8], "-o", str(pairs), "--db", db, "--judge-only"])
    assert exported.exit_code == 0 and "wrote 3 pairs" in exported.output
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert {r["chosen"][0]["content"] for r in rows} == {"I cannot help with that."}
    sft = tmp_path / "sft.jsonl"
    exported = runner.invoke(cli.app, ["export", "sft", exp_id[:8], "-o", str(sft), "--db", db, "--format", "standard"])
    assert exported.exit_code == 0 and "wrote 6 rows" in exported.output


def test_experiment_model_override_runs_the_same_prompts_on_another_model(monkeypatch, tmp_path):
    """`--model` swaps the file's model (a trained checkpoint on the same held-out prompts); the
    stored spec, which reports cite, names the model that ran."""
    from redraft.agents.testing import FunctionLLM

    loaded: list[str] = []

    def load(spec):
        loaded.append(spec.model)
        return FunctionLLM(lambda conv: "Sure, here is how.")

    use_backend(monkeypatch, load)
    db = f"sqlite:///{tmp_path / 'exp.db'}"
    spec = tmp_path / "exp.yaml"
    spec.write_text(EXPERIMENT.format(db=db))
    result = runner.invoke(cli.app, ["experiment", "run", str(spec), "--quiet", "--model", "ckpt/dpo"])
    assert result.exit_code == 0, result.output
    [run] = SQLStore(db).runs()
    stored = SQLStore(db).experiment(run.experiment_id).spec
    assert loaded == ["ckpt/dpo"] and stored["model"] == "ckpt/dpo"
    both = runner.invoke(cli.app, ["experiment", "run", "--resume", run.experiment_id, "--model", "x", "--db", db])
    assert both.exit_code == 2 and "keeps the model it started with" in " ".join(both.output.split())


def test_experiment_file_errors_name_the_field(monkeypatch, tmp_path):
    use_llm(monkeypatch, scripted([], []))
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\ndatasets: [{name: advbench, limit: 0}]\ncritics: [nope]\nbatch_size: two\n")
    result = runner.invoke(cli.app, ["experiment", "run", str(spec)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "datasets.0.limit" in text and "unknown critic 'nope'" in text and "batch_size" in text
    neither = runner.invoke(cli.app, ["experiment", "run"])
    assert neither.exit_code == 2 and "--resume" in neither.output


@pytest.mark.llm
def test_experiment_workers_split_examples_across_processes(tmp_path):
    """--workers 2: this process runs shard 0 and a spawned `python -m redraft` worker shard 1,
    both with the real embedded model, into one database."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "".join(f'{{"prompt": "Say the number {i}.", "labels": {{"should_refuse": false}}}}\n' for i in range(4))
    )
    db = f"sqlite:///{tmp_path / 'w.db'}"
    spec = tmp_path / "w.yaml"
    spec.write_text(
        f"name: w\ndatabase: {db}\ndatasets: [{{name: jsonl, path: {prompts}}}]\ncritics: [oracle]\n"
        "max_rounds: 1\ncorrection: {generation: {max_new_tokens: 4}}\n"
    )
    result = runner.invoke(cli.app, ["experiment", "run", str(spec), "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    store = SQLStore(db)
    [run] = store.runs()
    examples = list(store.examples(run.id))
    assert sorted(e.key for e in examples) == [f"p:{i}" for i in range(1, 5)]
    assert all(e.outcome is not None and len(e.rounds) == 1 for e in examples)


def test_every_critic_option_is_a_run_option_with_the_fields_default():
    """`redraft run` declares no critic defaults of its own: each option comes from a CriticOptions
    field, and an option left out leaves the field's default."""
    import typer.main

    from redraft.critics import CriticOptions

    command = typer.main.get_command(cli.app).commands["run"]  # type: ignore[attr-defined]
    params = {p.name: p for p in command.params}
    for name, info in CriticOptions.model_fields.items():
        assert name in params, name
        assert (params[name].default is None and f"[default: {info.default}]" in (params[name].help or "")) or (
            info.default is None
        )
    assert critic_options(bci_threshold=None, verifier="llm") == CriticOptions(verifier="llm")


def test_help_lists_every_critic_name_and_a_model_typo_names_the_models(tmp_path):
    from redraft.critics import CRITICS

    shown = " ".join(runner.invoke(cli.app, ["run", "--help"], env={"COLUMNS": "300"}).output.split())
    assert all(name in shown for name in CRITICS) and "noisy-oracle:P" in shown
    typo = runner.invoke(cli.app, ["run", "--model", "qwen2.5-1.5b", "--prompt", "q", "--db", str(tmp_path / "x.db")])
    text = " ".join(typo.output.split())
    assert typo.exit_code == 2 and "did you mean 'qwen2.5-coder-1.5b'?" in text and "huggingface" not in text.lower()
    assert not (tmp_path / "x.db").exists()
