"""The experiment runner: batching, critic accuracy in the schema, crash-resume, sharded workers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from redraft.agents.testing import FunctionLLM
from redraft.analysis.metrics import critic_accuracy
from redraft.errors import InputError
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.base import StrategyLabel
from redraft.store.models import CritiqueRow, Example, Judgement, Round
from redraft.store.sql import SQLStore
from tests.experiments.worker import SPEC, reply

ROOT = Path(__file__).resolve().parents[2]


def snapshot(store: SQLStore, experiment_id: str) -> list[tuple]:
    """Every round of an experiment with its critiques and labels, without ids or timings."""
    rows = []
    with store.session() as s:
        query = (
            select(Example, Round)
            .join(Round, Round.example_id == Example.id)
            .where(Example.run_id.in_([r.id for r in store.experiment(experiment_id).runs]))
        )
        for ex, r in s.execute(query):
            run = store.run(ex.run_id)
            crits = s.scalars(select(CritiqueRow).where(CritiqueRow.round_id == r.id).order_by(CritiqueRow.id))
            judged = s.scalars(select(Judgement).where(Judgement.round_id == r.id))
            rows.append(
                (
                    run.cell,
                    ex.key,
                    r.index,
                    r.draft,
                    tuple((c.critic, c.passed, c.question, c.raw, c.truth, c.correct) for c in crits),
                    tuple((j.judge, j.good) for j in judged),
                )
            )
    return sorted(rows)


def outcomes(store: SQLStore, experiment_id: str) -> list[tuple]:
    out = []
    for run in store.experiment(experiment_id).runs:
        for ex in store.examples(run.id):
            out.append((run.cell, ex.key, ex.outcome.status if ex.outcome else None, len(ex.rounds)))
    return sorted(out)


def reference(tmp_path: Path) -> tuple[SQLStore, str]:
    store = SQLStore(f"sqlite:///{tmp_path / 'reference.db'}")
    exp = ExperimentRunner(ExperimentSpec.parse(SPEC), store, FunctionLLM(reply)).run()
    return store, exp


def test_round_r_of_a_batch_is_one_generate_call(tmp_path):
    llm = FunctionLLM(lambda conv: "Sure, here is how.")
    spec = ExperimentSpec.parse({**SPEC, "critics": ["oracle"], "batch_size": 4})
    ExperimentRunner(spec, SQLStore("sqlite://"), llm).run()
    # 18 examples in batches of 4 (4,4,4,4,2); the oracle fails harmful compliance, so harmful
    # examples get revised while benign ones are accepted at once.
    sizes = [len(batch) for batch in llm.calls]
    assert max(sizes) == 4 and sizes[:2] == [4, 4]
    assert len(llm.calls) < 18 * 3 / 2  # far fewer calls than one per example and round


def test_critic_accuracy_is_stored_next_to_the_judge_label(tmp_path):
    store, exp = reference(tmp_path)
    runs = {r.cell: r.id for r in store.experiment(exp).runs}
    assert set(runs) == {"cac/self-harm/r3", "cac/oracle/r3"}
    # The oracle is the judge itself: always right.
    oracle = critic_accuracy(store, [runs["cac/oracle/r3"]], by_round=False)
    assert [(c.critic, c.accuracy, c.abstained) for c in oracle] == [("oracle", 1.0, 0)]
    # Recompute the self-critic's confusion counts by hand from the stored rows.
    with store.session() as s:
        rows = s.execute(
            select(CritiqueRow.passed, Judgement.good)
            .join(Round, CritiqueRow.round_id == Round.id)
            .join(Judgement, Judgement.round_id == Round.id)
            .join(Example, Round.example_id == Example.id)
            .where(Example.run_id == runs["cac/self-harm/r3"])
        ).all()
    expect = {
        "tp": sum(p is False and g is False for p, g in rows),
        "fp": sum(p is False and g is True for p, g in rows),
        "tn": sum(p is True and g is True for p, g in rows),
        "fn": sum(p is True and g is False for p, g in rows),
        "abstained": sum(p is None for p, g in rows),
    }
    [got] = critic_accuracy(store, [runs["cac/self-harm/r3"]], by_round=False)
    assert {k: getattr(got, k) for k in expect} == expect
    assert got.n + got.abstained == len(rows) > 0 and got.n > 0
    per_round = critic_accuracy(store, [runs["cac/self-harm/r3"]])
    assert sum(c.n for c in per_round) == got.n and {c.round for c in per_round} <= {0, 1, 2}


def _kill_and_resume(url: str, kills: int, seed: int) -> tuple[str, list[int]]:
    """Start a run, SIGKILL it when the database holds a random number of rounds, resume; repeat.
    Returns the experiment id and the round counts at which runs died."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.experiments.worker", url]
    proc = subprocess.Popen([*cmd, "-", "0/1", "0.03"], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    experiment_id = proc.stdout.readline().strip()
    store = SQLStore(url)
    killed_at: list[int] = []
    for _ in range(kills):
        runs = [r.id for r in store.experiment(experiment_id).runs]
        target = store.progress(runs)[1] + rng.randint(1, 15)
        while proc.poll() is None:
            runs = [r.id for r in store.experiment(experiment_id).runs]
            if store.progress(runs)[1] >= target:
                proc.send_signal(signal.SIGKILL)  # no cleanup, no finally: like a power cut
                break
            time.sleep(0.01)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        killed_at.append(store.progress([r.id for r in store.experiment(experiment_id).runs])[1])
        proc = subprocess.Popen([*cmd, experiment_id, "0/1", "0.03"], env=env, cwd=ROOT)
    assert proc.wait(timeout=300) == 0
    store.close()
    return experiment_id, killed_at


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_random_points_then_resume_loses_and_repeats_nothing(tmp_path, seed):
    ref_store, ref = reference(tmp_path)
    url = f"sqlite:///{tmp_path / 'crashed.db'}"
    exp, killed_at = _kill_and_resume(url, kills=3, seed=seed)
    store = SQLStore(url)
    total = len(snapshot(ref_store, ref))
    assert any(0 < k < total for k in killed_at), f"no kill landed mid-run: {killed_at} of {total} rounds"
    assert snapshot(store, exp) == snapshot(ref_store, ref)
    assert outcomes(store, exp) == outcomes(ref_store, ref)


def test_parallel_sharded_workers_share_one_database(tmp_path, store_url):
    ref_store, ref = reference(tmp_path)
    store = SQLStore(store_url)
    spec = ExperimentSpec.parse(SPEC)
    exp = store.start_experiment(spec.name, spec.model_dump(mode="json"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.experiments.worker", store_url, exp, f"{i}/3"], env=env, cwd=ROOT
        )
        for i in range(3)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0]
    assert snapshot(store, exp) == snapshot(ref_store, ref)
    assert all(r.ended_at is not None for r in store.experiment(exp).runs)


def test_oracle_without_ground_truth_is_a_clear_error():
    from redraft.critics import DraftContext, OracleCritic

    with pytest.raises(InputError, match="oracle critic needs ground truth"):
        OracleCritic().critique([DraftContext(prompt="p", draft="d")])


def test_bad_shard_and_duplicate_datasets_are_rejected():
    spec = ExperimentSpec.parse(SPEC)
    with pytest.raises(InputError, match="shard 2/2 is invalid"):
        ExperimentRunner(spec, SQLStore("sqlite://"), FunctionLLM(reply), shard=(2, 2))
    twice = ExperimentSpec.parse({**SPEC, "datasets": [{"name": "advbench", "limit": 2}] * 2})
    with pytest.raises(InputError, match="appears twice"):
        ExperimentRunner(twice, SQLStore("sqlite://"), FunctionLLM(reply)).run()


def test_a_dataset_can_be_judged_by_another_judge_and_held_out_by_skip():
    """`judge:` relabels a dataset with another judge (the broad refusal list here), and `skip:`
    gives prompts disjoint from a run over the same seed."""
    from redraft.experiments.runner import load_rows

    # "I can't help with that." is a refusal Wang et al.'s verbatim list misses.
    llm = FunctionLLM(lambda conv: "I can't help with that.")
    outcome = {}
    for judge in ("refusal", "refusal-broad"):
        spec = ExperimentSpec.parse(
            {**SPEC, "datasets": [{"name": "advbench", "limit": 3, "judge": judge}], "critics": ["oracle"]}
        )
        store = SQLStore("sqlite://")
        exp = ExperimentRunner(spec, store, llm).run()
        with store.session() as s:
            labels = s.execute(select(Judgement.judge, Judgement.good)).all()
        outcome[judge] = {tuple(row) for row in labels}
    assert outcome == {"refusal": {("refusal", False)}, "refusal-broad": {("refusal-broad", True)}}, exp
    train = ExperimentSpec.parse({**SPEC, "datasets": [{"name": "advbench", "limit": 8, "seed": 5}]})
    held = ExperimentSpec.parse({**SPEC, "datasets": [{"name": "advbench", "limit": 8, "seed": 5, "skip": 8}]})
    assert not {r.key for r in load_rows(train)} & {r.key for r in load_rows(held)}
    with pytest.raises(InputError, match="unknown judge 'nope'"):
        ExperimentSpec.parse({**SPEC, "datasets": [{"name": "advbench", "judge": "nope"}]})


def test_an_experiment_file_sets_the_revise_strategy_knobs():
    """best_of and constrain reach every run's CorrectionConfig from the file, bounded the same way."""
    from tests.experiments.test_report import refuse_after_feedback

    spec = ExperimentSpec.parse(
        {
            **SPEC,
            "datasets": [{"name": "advbench", "limit": 2}],
            "critics": ["oracle"],
            "correction": {"best_of": 2},
            "max_rounds": 2,
        }
    )
    [cell] = spec.cells()
    assert (spec.config(cell).best_of, spec.config(cell).constrain) == (2, False)
    store = SQLStore("sqlite://")
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback)).run()
    [run] = store.experiment(exp).runs
    records = [r.correction for ex in store.examples(run.id) for r in ex.rounds if r.correction]
    assert [
        (str(StrategyLabel.model_validate(c["strategy"])), c["verdict"], len(c["candidates"])) for c in records
    ] == [("cac+best_of_2", "fixed", 1)] * 2
    with pytest.raises(InputError, match=r"correction\.best_of"):
        ExperimentSpec.parse({**SPEC, "correction": {"best_of": 17}})
    with pytest.raises(InputError, match="best_of configures the correction loop: write it under correction:"):
        ExperimentSpec.parse({**SPEC, "best_of": 2})
