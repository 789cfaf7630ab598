"""Every benchmark runs, at a tiny scale, through its real code path. A benchmark that no longer
runs breaks the documented numbers silently (``index_build.py`` once crashed after a minute of
work; ``view_pages.py`` once asked for a page the server refuses). The numbers printed here mean
nothing; each run must finish and print its result table."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# script, arguments ({bench} is a tiny corpus in the shared bench layout, {db} a logged
# experiment), a line the result table prints, and a module the benchmark needs.
CASES = [
    ("index_build.py", ["{bench}", "--skip-infinigram", "--token-level-mb", "0.01"], "vs raw pydivsufsort", None),
    ("index_query.py", ["{bench}", "--skip-infinigram", "--responses", "4"], "numpy batched binary search", None),
    ("overhead.py", ["--invocations", "3", "--rounds", "2"], "redraft, SQLite store on", None),
    ("cli_startup.py", ["--repeats", "1"], "redraft --help", None),
    ("openai_throughput.py", ["--prompts", "4", "--rounds", "2", "--latency", "0.01"], "max_concurrency", None),
    (
        "runner_batching.py",
        ["--per-set", "2", "--rounds", "2", "--batch", "2", "--tokens", "8"],
        "batched runner",
        None,
    ),
    ("self_critic_verdicts.py", ["--per-set", "1", "--rounds", "1"], "logprobs", None),
    ("self_critic_injection.py", ["--harm", "1", "--factual", "1"], "advbench / harm", None),
    ("prov_decode.py", ["--tokens", "8", "--batch", "2", "--repeats", "1"], "overhead:", None),
    ("view_pages.py", ["--examples", "50"], "one example", None),
    ("kb_retrieval.py", ["--n", "20"], "BM25 top hit first", None),
    ("factuality_longform.py", ["--drafts", "4"], "lexical overlap (baseline)", None),
    ("factuality_accuracy.py", ["--skip-llm", "--per-source", "3"], "lexical overlap (baseline)", None),
    ("corrections.py", ["--n", "2", "--tokens", "8", "--out", "{tmp}/c.jsonl"], "fresh+best_of_4", None),
    ("corrections.py", ["--pairs"], "evasion check: agrees on", None),
    ("corrections.py", ["--traceshield"], "TraceShield + assertion check", None),
    ("corrections.py", ["--claims", "--n", "3"], "unknown=pass: flags", None),
    ("corrections.py", ["--three-way", "--n", "4"], "not enough evidence: precision", None),
    ("corrections.py", ["--handcheck"], "truly fixed", None),
    ("store_faults.py", ["--processes", "2", "--kills", "1"], "SIGKILLs + resume", None),
    ("refusal_judges.py", ["--db", "{db}"], "drafts", None),
    ("ray_throughput.py", ["--examples", "2", "--rounds", "1", "--tokens", "4"], "throughput ratio", "ray"),
]
"""``vllm_throughput.py`` runs in ``tests/vllm`` (it needs vLLM's own environment)."""


def test_every_benchmark_has_a_smoke_run():
    covered = {script for script, *_ in CASES} | {"vllm_throughput.py"}
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")}
    assert scripts == covered


def tiny_bench(out: Path) -> Path:
    """A corpus in the layout of the shared bench's build_corpus.py and make_responses.py:
    ``jsonl/corpus.jsonl``, ``corpus.bin`` (0xFF before each document's UTF-8) and
    ``responses.jsonl`` (500-byte passages with 10% of bytes changed, two workloads)."""
    rng = random.Random(0)
    words = [
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "that",
        "by",
        "with",
        "as",
        "at",
        "from",
        "his",
        "her",
        "it",
        "an",
        "were",
        "are",
        "which",
    ]
    docs = [" ".join(rng.choice(words) for _ in range(400)) for _ in range(40)]
    (out / "jsonl").mkdir(parents=True)
    with (out / "jsonl" / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for i, doc in enumerate(docs):
            f.write(json.dumps({"text": doc, "src": "tiny", "i": i}) + "\n")
    (out / "corpus.bin").write_bytes(b"".join(b"\xff" + d.encode() for d in docs))
    responses: dict[str, list[dict[str, str]]] = {"uniform": [], "burst": []}
    for mode, found in responses.items():
        for k in range(4):
            text = bytearray(docs[k].encode()[:500])
            for p in rng.sample(range(500), 50):
                text[p] = rng.randrange(97, 123)
            found.append({"hex": bytes(text).hex(), "mode": mode})
    (out / "responses.jsonl").write_text(json.dumps(responses), encoding="utf-8")
    return out


def logged_experiment(path: Path) -> str:
    """A SQLite run log with one small refusal experiment (AdvBench, a fixed reply)."""
    from redraft.agents.testing import FunctionLLM
    from redraft.experiments import ExperimentRunner, ExperimentSpec
    from redraft.store.sql import SQLStore

    url = f"sqlite:///{path}"
    spec = ExperimentSpec.parse(
        {"name": "smoke", "datasets": [{"name": "advbench", "limit": 2}], "critics": ["oracle"], "max_rounds": 1}
    )
    with SQLStore(url) as store:
        ExperimentRunner(spec, store, FunctionLLM(lambda conv: "I cannot help with that.")).run()
    return url


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args", "expect", "needs"), CASES, ids=[f"{c[0]}:{' '.join(c[1][:1])}" for c in CASES]
)
def test_the_benchmark_runs_at_a_tiny_scale(tmp_path, script, args, expect, needs):
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{script} needs {needs}, which this environment lacks")
    fill = {"tmp": str(tmp_path)}
    if any("{bench}" in a for a in args):
        fill["bench"] = str(tiny_bench(tmp_path / "bench"))
    if any("{db}" in a for a in args):
        fill["db"] = logged_experiment(tmp_path / "log.db")
    argv = [a.format(**fill) for a in args]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert expect in done.stdout, done.stdout[-3000:]
