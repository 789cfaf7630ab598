"""Reports: tables computed from the store match hand counts; plots are written."""

from __future__ import annotations

import math

import pytest

from redraft.agents.testing import FunctionLLM
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.experiments.report import write_report
from redraft.store.metrics import Trajectory, changes, good_rate, pearson, trajectories
from redraft.store.sql import SQLStore


def test_changes_and_good_rate_by_hand():
    trajs = [
        Trajectory("r", "a", "s", (False, True, True)),  # improved
        Trajectory("r", "b", "s", (True, False, False)),  # worsened
        Trajectory("r", "c", "s", (True, True, True)),  # unchanged
        Trajectory("r", "d", "s", (None, None, None)),  # unlabelled
    ]
    assert changes(trajs) == {"improved": 1, "worsened": 1, "unchanged": 1, "unlabelled": 1}
    assert good_rate(trajs, 0) == (2 / 3, 3)
    assert good_rate(trajs, 2) == (2 / 3, 3)


def test_pearson_matches_numpy_and_needs_three_points():
    import numpy as np

    xs, ys = [0.2, 0.5, 0.9, 0.4], [0.0, 0.1, 0.4, 0.05]
    assert pearson(xs, ys) == pytest.approx(np.corrcoef(xs, ys)[0, 1])
    assert math.isnan(pearson([1, 2], [1, 2]))


def refuse_after_feedback(conv):
    # Complies at first; refuses once any check turn is in the conversation.
    return "I cannot help with that." if len(conv) > 2 else "Sure, here is how."


def test_report_of_an_experiment(tmp_path):
    spec = ExperimentSpec.parse(
        {
            "name": "rep",
            "datasets": [{"name": "advbench", "limit": 4}, {"name": "benign", "limit": 4}],
            "critics": ["oracle"],
            "max_rounds": 2,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'r.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback), progress=False).run()
    [run] = store.experiment(exp).runs
    trajs = trajectories(store, run.id, 2)
    # Harmful: complied (bad) then refused after the oracle's feedback (good). Benign: complied, accepted.
    assert (
        sorted((t.source, t.labels) for t in trajs)
        == [("advbench", (False, True))] * 4 + [("benign", (True, True))] * 4
    )
    path = write_report(store, exp[:8], tmp_path / "report")
    text = path.read_text()
    # Critic pass rates are per dataset: the oracle fails every harmful first draft, passes every benign one.
    assert "| cac/oracle/r2 | advbench | 0 | ASR 1.000 | 4 | oracle 0.000 | oracle 1.000 |" in text
    assert "| cac/oracle/r2 | advbench | 1 | ASR 0.000 | 4 | oracle 1.000 | oracle 1.000 |" in text
    assert "| cac/oracle/r2 | benign | 0 | accuracy 1.000 | 4 | oracle 1.000 | oracle 1.000 |" in text
    assert "| cac/oracle/r2 | advbench | 4 | 0 | 0 | 0 |" in text  # improved, worsened, unchanged, unlabelled
    for png in ("outcome_by_round.png", "critic_accuracy.png", "gain_vs_accuracy.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_a_users_harmful_jsonl_set_reports_asr(tmp_path):
    """ASR or accuracy is decided by the rows' should_refuse labels, not the dataset's name."""
    import json

    rows = [{"prompt": f"harmful request {i}", "labels": {"should_refuse": True}} for i in range(3)]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = ExperimentSpec.parse(
        {
            "name": "mine",
            "datasets": [{"name": "jsonl", "path": str(tmp_path / "mine.jsonl")}, {"name": "benign", "limit": 2}],
            "critics": ["oracle"],
            "max_rounds": 2,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'r.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback), progress=False).run()
    text = write_report(store, exp[:8], tmp_path / "report", plots=False).read_text()
    [source] = {t.source for t in trajectories(store, store.experiment(exp).runs[0].id, 2)} - {"benign"}
    assert f"| cac/oracle/r2 | {source} | 0 | ASR 1.000 | 3 |" in text
    assert f"| cac/oracle/r2 | {source} | 1 | ASR 0.000 | 3 |" in text
    assert "| cac/oracle/r2 | benign | 0 | accuracy 1.000 | 2 |" in text


def test_summed_confusions_equal_the_databases_own_grouping(tmp_path):
    """The report reads critic accuracy once, per round and dataset, and sums it for the coarser
    tables; every coarser view must equal the one SQL's GROUP BY gives."""
    from redraft.agents.testing import hashed_reply
    from redraft.store.metrics import aggregate, critic_accuracy

    spec = ExperimentSpec.parse(
        {
            "name": "agg",
            "datasets": [{"name": "advbench", "limit": 5}, {"name": "benign", "limit": 5}],
            "critics": [["self-harm", "oracle"]],
            "modes": ["cac"],
            "max_rounds": 3,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'a.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(hashed_reply), progress=False).run()
    ids = [r.id for r in store.experiment(exp).runs]
    fine = critic_accuracy(store, ids, by_source=True)
    for by_round in (True, False):
        for by_source in (True, False):
            summed = aggregate(fine, by_round=by_round, by_source=by_source)
            assert summed == critic_accuracy(store, ids, by_round=by_round, by_source=by_source)
    assert len(fine) > len(aggregate(fine, by_round=False, by_source=False)) >= 2
