"""Catalogue: bad prompts, options and experiment files fail early, by name, with exit code 2,
before a model loads or anything is generated or logged."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.agents.testing import FunctionLLM
from redraft.store import SQLStore
from tests.graphs.helpers import scripted, use_backend, use_llm

runner = CliRunner(env={"COLUMNS": "200"})
OK = "VERDICT: CORRECT"


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a command loads a model: these errors must come first."""

    def load(spec):
        raise AssertionError("the model was loaded before the input was validated")

    use_backend(monkeypatch, load)


PROMPT_FILES = [
    ("empty", b"", 'p.jsonl has no rows; put one JSON object per line, e.g. {"prompt": "What is'),
    ("blank-lines", b"\n  \n", "p.jsonl has no rows"),
    ("whitespace-prompt", b'{"prompt": "   "}\n', "prompt p:1 is empty"),
    ("malformed", b'{"prompt": "ok"}\n{"prompt": \n', "p.jsonl:2 is not valid JSON"),
    ("missing-key", b'{"question": "q"}\n', "p.jsonl:1 needs a string field 'prompt'"),
    ("not-an-object", b'["q"]\n', "p.jsonl:1 is not a JSON object"),
    ("latin-1", '{"prompt": "café"}\n'.encode("latin-1"), "p.jsonl:1 is not valid UTF-8"),
    ("deep-nesting", b"[" * 100_000 + b"\n", "p.jsonl:1 is not valid JSON"),
]


@pytest.mark.parametrize(("case", "content", "message"), PROMPT_FILES, ids=[c[0] for c in PROMPT_FILES])
def test_bad_prompt_files_fail_before_the_model_loads(tmp_path, no_model, case, content, message):
    (tmp_path / "p.jsonl").write_bytes(content)
    result = runner.invoke(cli.app, ["run", "--input", str(tmp_path / "p.jsonl"), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)


def test_an_empty_prompt_among_good_ones_stops_before_any_generation(tmp_path, monkeypatch):
    llm = scripted([], [])
    use_llm(monkeypatch, llm)
    rows = [{"prompt": "Capital of France?", "id": "a"}, {"prompt": "  ", "id": "b"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(cli.app, ["run", "--input", str(tmp_path / "p.jsonl"), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "prompt b is empty" in flat(result.output)
    assert llm.calls == [] and SQLStore(f"sqlite:///{tmp_path / 'x.db'}").runs() == []


def test_a_prompt_too_long_for_the_context_stops_before_the_first_generation(tmp_path, monkeypatch):
    """It used to fire mid-run, after earlier prompts were generated and logged, with no run id."""
    llm = FunctionLLM(lambda conv: "Paris.", context_length=2048)
    use_llm(monkeypatch, llm)
    args = ["run", "--prompt", "Capital of France?", "--prompt", "word " * 40_000, "--critic", "oracle"]
    result = runner.invoke(cli.app, [*args, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "prompt prompt-1: the prompt takes" in flat(result.output)
    assert llm.calls == [] and SQLStore(f"sqlite:///{tmp_path / 'x.db'}").runs() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--critic", "nope"], "unknown critic 'nope'"),
        (["--critic", "bci"], "the bci critic needs an index"),
        (["--critic", "bci", "--index", "/no/such/index"], "is not a redraft index"),
        (["--critic", "factuality", "--verifier", "magic"], "unknown verifier 'magic'"),
        (["--critic", "factuality", "--verifier", "nli:/no/such/model"], "verifier model path /no/such/model"),
        (["--critic", "factuality", "--kb", "/no/such/kb.jsonl"], "knowledge base /no/such/kb.jsonl does not exist"),
        (["--max-rounds", "0"], "greater than or equal to 1"),
        (["--mode", "refine"], "known modes: fresh, feedback"),
    ],
)
def test_bad_options_fail_before_the_model_loads(tmp_path, no_model, args, message):
    result = runner.invoke(cli.app, ["run", "--prompt", "q", *args, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)


EXPERIMENTS = [
    ("unknown-field", "name: x\ndatasets: [{name: benign}]\ncritics: [oracle]\ncolour: red\n", "colour: Extra inputs"),
    ("wrong-type", "name: x\ndatasets: [{name: benign}]\ncritics: [oracle]\nbatch_size: two\n", "batch_size"),
    ("unknown-dataset", "name: x\ndatasets: [{name: imagenet}]\ncritics: [oracle]\n", "imagenet"),
    ("unknown-critic", "name: x\ndatasets: [{name: benign}]\ncritics: [nope]\n", "unknown critic 'nope'"),
    ("no-datasets", "name: x\ndatasets: []\ncritics: [oracle]\n", "datasets"),
    ("not-a-mapping", "- a\n- b\n", "must be a mapping of fields"),
    ("bad-yaml", "name: [x\n", "is not valid YAML"),
    ("python-tag", "name: !!python/object/apply:os.system ['touch owned']\n", "is not valid YAML"),
    (
        "bad-verifier",
        "name: x\ndatasets: [{name: benign}]\ncritics: [factuality]\ncritic_options: {verifier: magic}\n",
        "unknown verifier 'magic'",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), EXPERIMENTS, ids=[c[0] for c in EXPERIMENTS])
def test_bad_experiment_files_name_the_field(tmp_path, no_model, monkeypatch, case, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.yaml").write_text(text)
    result = runner.invoke(cli.app, ["experiment", "run", "e.yaml", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert not (tmp_path / "owned").exists()


def test_a_non_utf8_experiment_file_is_named(tmp_path, no_model):
    (tmp_path / "e.yaml").write_bytes("name: café\n".encode("latin-1"))
    result = runner.invoke(cli.app, ["experiment", "run", str(tmp_path / "e.yaml")])
    assert result.exit_code == 2 and "is not valid UTF-8" in flat(result.output)


def test_an_empty_export_fails_and_says_why(tmp_path, monkeypatch):
    use_llm(monkeypatch, scripted(["Paris."], [OK]))
    db = str(tmp_path / "x.db")
    assert runner.invoke(cli.app, ["run", "--prompt", "Capital of France?", "--db", db, "--quiet"]).exit_code == 0
    [run] = SQLStore(f"sqlite:///{db}").runs()
    out = tmp_path / "pairs.jsonl"
    result = runner.invoke(cli.app, ["export", "dpo", run.id[:8], "-o", str(out), "--db", db])
    assert result.exit_code == 2
    assert "nothing to export: none of the 1 examples has a final revision" in flat(result.output)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".pairs")] == []


@pytest.mark.parametrize(
    ("args", "text"),
    [(["experiment", "run", "--help"], "redraft[ray]"), (["train", "--help"], "redraft[train]")],
)
def test_help_keeps_bracketed_text_and_shows_no_rest_markup(args, text):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0 and text in result.output and "``" not in result.output


def test_an_oversized_jsonl_line_is_refused_without_holding_it(tmp_path):
    """A 300 MB line peaked at 1.2 GB before its error: each line is now read with a bound."""
    import tracemalloc

    from redraft._jsonl import MAX_LINE_BYTES, read_objects
    from redraft.errors import InputError

    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:
        f.write(b'{"prompt": "fine"}\n{"prompt": "')
        for _ in range(4 * MAX_LINE_BYTES >> 20):  # a 64 MB line, written a megabyte at a time
            f.write(b"x" * (1 << 20))
        f.write(b'"}\n')
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"huge\.jsonl:2 is over 16,777,216 bytes"):
            list(read_objects(path, "prompt", '{"prompt": "..."}'))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_LINE_BYTES + (8 << 20), f"peak {peak / 1e6:.0f} MB"
