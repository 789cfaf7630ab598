"""A whole experiment through the OpenAI-compatible backend, against a loopback stub server that
returns log-probabilities: self-critic verdicts read from them, the report, calibration, a DPO
export, and a server that dies mid-run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from redraft import cli
from redraft.store import SQLStore
from tests.agents.openai_stub import Messages, StubServer

runner = CliRunner(env={"COLUMNS": "250"})
COMPLY, REFUSE = "Sure, here is how.", "I cannot help with that."


def reply(messages: Messages) -> str:
    # Complies on the first draft; refuses once a check or revision turn is in the conversation.
    return REFUSE if len(messages) > 1 else COMPLY


def labels(messages: Messages) -> dict[str, float]:
    # The harm check, asked as "harmful? Yes/No" with the draft quoted: a compliance looks harmful.
    quoted = messages[-1]["content"]
    return {"Yes": 0.8, "No": 0.2} if COMPLY in quoted else {"Yes": 0.1, "No": 0.9}


def experiment(tmp_path, url: str, db: str) -> str:
    path = tmp_path / "e.yaml"
    path.write_text(
        "name: openai-e2e\nbackend: openai\nmodel: stub-model\n"
        f"base_url: {url}\nmax_concurrency: 4\nmax_retries: 1\ndatabase: {db}\n"
        "datasets: [{name: advbench, limit: 3, seed: 1}, {name: benign, limit: 3, seed: 1}]\n"
        "critics: [[self-harm], [oracle]]\nmodes: [cac]\nmax_rounds: 2\nbatch_size: 6\n"
    )
    return str(path)


def run_to_the_end(tmp_path, stub: StubServer, db: str) -> None:
    """The experiment, run to completion against ``stub``, which is stopped afterwards."""
    try:
        result = runner.invoke(cli.app, ["experiment", "run", experiment(tmp_path, stub.url, db), "--quiet"])
        assert result.exit_code == 0, result.output
    finally:
        stub.stop()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_an_experiment_on_the_openai_backend_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    stub = StubServer(reply, labels, delay_s=0.02)
    db = f"sqlite:///{tmp_path / 'e.db'}"
    run_to_the_end(tmp_path, stub, db)
    # A round's pending examples go out together, bounded by max_concurrency.
    assert 1 < stub.max_in_flight <= 4
    assert all(r["model"] == "stub-model" for r in stub.requests)
    label_requests = [r for r in stub.requests if r.get("logprobs")]
    assert label_requests and all(r["max_tokens"] == 1 and r["top_logprobs"] == 20 for r in label_requests)

    store = SQLStore(db, readonly=True)
    [exp] = {r.experiment_id for r in store.runs()}
    spec = store.experiment(exp).spec
    assert spec["backend"] == "openai" and "sk-local" not in json.dumps(spec)
    # Verdicts come from log-probabilities: score = P(Yes) / (P(Yes) + P(No)) for the harm check.
    cell = {r.cell: r for r in store.experiment(exp).runs}["cac/self-harm/r2"]
    scores = sorted({round(c.score, 6) for e in store.examples(cell.id) for r in e.rounds for c in r.critiques})
    assert scores == [0.1, 0.8]
    evidence = next(iter(store.examples(cell.id))).rounds[0].critiques[0].evidence[0]
    assert evidence["verdict_source"] == "logprobs"

    out = tmp_path / "report"
    reported = runner.invoke(cli.app, ["report", exp[:8], "-o", str(out), "--db", db, "--no-plots"])
    assert reported.exit_code == 0, reported.output
    text = (out / "report.md").read_text()
    # By hand. self-harm, round 0: every first draft complies (P(harmful) 0.8: fail). AdvBench's are
    # bad (3 TP), benign ones good (3 FP). Round 1, after the check in context: every draft refuses
    # (P 0.1: pass); AdvBench's good (3 TN), benign ones bad, over-refusals (3 FN).
    half, half6 = "0.500 [0.25, 0.75]", "0.500 [0.19, 0.81]"  # Wilson intervals of 6/12 and 3/6
    assert f"| cac/self-harm/r2 | self-harm | 12 | {half} | {half6} | {half6} | 3 | 3 | 3 | 3 | 0 |" in text
    # oracle: fails the 3 harmful compliances (TP), passes the 3 benign ones (TN, accepted) and
    # the 3 refusals that follow (TN).
    all9, all3 = "1.000 [0.70, 1.00]", "1.000 [0.44, 1.00]"  # of 9/9 and 3/3
    assert f"| cac/oracle/r2 | oracle | 9 | {all9} | {all3} | {all3} | 3 | 0 | 6 | 0 | 0 |" in text

    calibrated = runner.invoke(cli.app, ["calibrate", "self-harm", exp[:8], "--db", db])
    assert calibrated.exit_code == 0, calibrated.output
    # Scores 0.8 (3 bad, 3 good drafts) and 0.1 (3 good, 3 bad): no threshold beats chance.
    assert "0.500" in calibrated.output and "12 judged critiques, 6 of them on bad drafts" in flat(calibrated.output)

    pairs = tmp_path / "pairs.jsonl"
    exported = runner.invoke(cli.app, ["export", "dpo", exp[:8], "-o", str(pairs), "--db", db, "--judge-only"])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert rows and {r["chosen"][0]["content"] for r in rows} == {REFUSE}


def test_a_server_that_dies_mid_run_stops_it_cleanly_and_resume_completes_it(tmp_path):
    ref_db = f"sqlite:///{tmp_path / 'ref.db'}"
    run_to_the_end(tmp_path, StubServer(reply, labels), ref_db)

    stub = StubServer(reply, labels)
    db = f"sqlite:///{tmp_path / 'e.db'}"
    # 6 drafts and 6 label checks write round 0 of the first cell; the server dies during round 1.
    stub.on_request = lambda n: _die(stub) if n >= 16 else None
    result = runner.invoke(cli.app, ["experiment", "run", experiment(tmp_path, stub.url, db), "--quiet"])
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "could not get a completion" in text and "--resume" in text
    store = SQLStore(db, readonly=True)
    [exp] = {r.experiment_id for r in store.runs()}
    before = store.progress([r.id for r in store.experiment(exp).runs])[1]

    stub.on_request = None
    stub.start()  # back on the same port
    try:
        resumed = runner.invoke(cli.app, ["experiment", "run", "--resume", exp[:8], "--db", db, "--quiet"])
        assert resumed.exit_code == 0, resumed.output
    finally:
        stub.stop()
    assert 0 < before < len(_rounds(ref_db))
    assert _rounds(db) == _rounds(ref_db)  # no round lost, none written twice


def _die(stub: StubServer) -> None:
    """Stop serving from inside a request: later requests find the port closed."""
    import threading

    stub.on_request = None
    threading.Thread(target=stub.stop, daemon=True).start()
    raise ConnectionAbortedError("the server went away")


def _rounds(db: str) -> list[tuple]:
    store = SQLStore(db, readonly=True)
    rows = []
    for run in store.runs():
        for e in store.examples(run.id):
            rows += [
                (run.cell, e.key, r.index, r.draft, tuple((c.critic, c.passed) for c in r.critiques)) for r in e.rounds
            ]
    return sorted(rows)
