"""Reports: tables computed from the store match hand counts; plots are written."""

from __future__ import annotations

import math

import pytest

from redraft.agents.testing import FunctionLLM
from redraft.analysis.metrics import Trajectory, changes, final_verdicts, good_rate, pearson, trajectories
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.experiments.report import write_report
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
            "modes": ["cac"],
            "max_rounds": 2,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'r.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback)).run()
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
    # Wilson 95% intervals of 4/4 and 0/4: [0.510, 1] and [0, 0.490] (hand-computed).
    hi, lo = "1.000 [0.51, 1.00]", "0.000 [0.00, 0.49]"
    assert f"| cac/oracle/r2 | advbench | 0 | ASR {hi} | 4 | oracle {lo} | oracle {hi} (n=4) |" in text
    assert f"| cac/oracle/r2 | advbench | 1 | ASR {lo} | 4 | oracle {hi} | oracle {hi} (n=4) |" in text
    assert f"| cac/oracle/r2 | benign | 0 | accuracy {hi} | 4 | oracle {hi} | oracle {hi} (n=4) |" in text
    # Every harmful example improved: the gain is +1 with no spread.
    assert "| cac/oracle/r2 · advbench · oracle | 1.000 [0.68, 1.00] | 8 | +1.000 [1.00, 1.00] | 4 |" in text
    assert "- **model**: function" in text and "- **datasets**: advbench limit 4 seed 0; benign limit 4 seed 0" in text
    assert "| cac/oracle/r2 | advbench | 4 | 0 | 0 | 0 |" in text  # improved, worsened, unchanged, unlabelled
    # Final answers: each harmful example's refusal (round 1) passed; each benign one stopped at
    # round 0, so its first draft is its final answer, and the oracle passed it.
    assert final_verdicts(store, run.id) == {
        "advbench": {"oracle": {t.key: True for t in trajs if t.source == "advbench"}},
        "benign": {"oracle": {t.key: True for t in trajs if t.source == "benign"}},
    }
    assert f"| cac/oracle/r2 | advbench | oracle | {lo} | 4 | 0 | 0 |" in text
    # Each harmful draft was flagged by the oracle (it names no claim), and its revision is judged
    # good where the draft was bad: fixed, 4 of 4. Benign drafts passed, so they were never revised.
    corrections = text.split("## What the revisions did to the flagged claims")[1].split("## ")[0]
    assert "| run | dataset | fixed | abstained | leaked | evaded | unchanged | broken | unjudged |" in corrections
    assert "| cac/oracle/r2 | advbench | 4 | 0 | 0 | 0 | 0 | 0 | 0 |" in corrections
    assert "benign" not in corrections
    # SCoRe's shifts in round 1 (hand-computed): all 4 harmful drafts fixed, none broken; the
    # benign drafts all passed, so no revision round ran for them.
    deltas = text.split("### By round")[1].split("## ")[0]
    assert "| cac/oracle/r2 | advbench | 1 | 4 | 1.000 [1.00, 1.00] | 0.000 [0.00, 0.00] |" in deltas
    assert "benign" not in deltas
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
            "modes": ["cac"],
            "max_rounds": 2,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'r.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback)).run()
    text = write_report(store, exp[:8], tmp_path / "report", plots=False).read_text()
    [source] = {t.source for t in trajectories(store, store.experiment(exp).runs[0].id, 2)} - {"benign"}
    assert f"| cac/oracle/r2 | {source} | 0 | ASR 1.000 [0.44, 1.00] | 3 |" in text
    assert f"| cac/oracle/r2 | {source} | 1 | ASR 0.000 [0.00, 0.56] | 3 |" in text
    assert "| cac/oracle/r2 | benign | 0 | accuracy 1.000 [0.34, 1.00] | 2 |" in text


def test_summed_confusions_equal_the_databases_own_grouping(tmp_path):
    """The report reads critic accuracy once, per round and dataset, and sums it for the coarser
    tables; every coarser view must equal the one SQL's GROUP BY gives."""
    from redraft.agents.testing import hashed_reply
    from redraft.analysis.metrics import aggregate, critic_accuracy

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
    exp = ExperimentRunner(spec, store, FunctionLLM(hashed_reply)).run()
    ids = [r.id for r in store.experiment(exp).runs]
    fine = critic_accuracy(store, ids, by_source=True)
    for by_round in (True, False):
        for by_source in (True, False):
            summed = aggregate(fine, by_round=by_round, by_source=by_source)
            assert summed == critic_accuracy(store, ids, by_round=by_round, by_source=by_source)
    assert len(fine) > len(aggregate(fine, by_round=False, by_source=False)) >= 2


def always_comply(conv):
    return "Sure, here is how."


def refuse_some_after_feedback(conv):
    # Refuses after feedback only when the prompt's text has an even length: a known, mixed share.
    if len(conv) > 2 and len(conv[0]["content"]) % 2 == 0:
        return "I cannot help with that."
    return "Sure, here is how."


def test_comparing_two_experiments_gives_paired_differences_computed_by_hand(tmp_path):
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.datasets import load

    spec = {
        "name": "cmp",
        "datasets": [{"name": "advbench", "limit": 12, "seed": 5}],
        "critics": ["oracle"],
        "modes": ["cac"],
    }
    spec["max_rounds"] = 2
    db = tmp_path / "c.db"
    store = SQLStore(f"sqlite:///{db}")
    parsed = ExperimentSpec.parse(spec)
    a = ExperimentRunner(parsed, store, FunctionLLM(always_comply)).run()
    b = ExperimentRunner(parsed, store, FunctionLLM(refuse_some_after_feedback)).run()
    prompts = [r.prompt for r in load("advbench", limit=12, seed=5)]
    fixed = sum(len(p) % 2 == 0 for p in prompts)  # the examples B corrects
    assert 0 < fixed < 12

    out = CliRunner().invoke(cli.app, ["report", a[:8], b[:8], "-o", str(tmp_path / "cmp"), "--db", str(db)])
    assert out.exit_code == 0, out.output
    text = (tmp_path / "cmp" / "compare.md").read_text()
    # A: ASR 12/12 at the end; B: (12 - fixed)/12. Same prompts, so the difference is paired.
    row = next(line for line in text.splitlines() if line.startswith("| cac/oracle/r2 | advbench |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("ASR 1.000 [0.76, 1.00]") and cells[3] == "12"
    assert cells[4].startswith(f"ASR {(12 - fixed) / 12:.3f}")
    assert cells[6].startswith("+0.000 [")  # both comply at first: the models alone do not differ
    assert cells[7].startswith(f"{-fixed / 12:+.3f} [") and cells[8].startswith(f"{fixed / 12:+.3f} [")
    assert cells[9] == "paired"
    lo, hi = (float(x) for x in cells[7].split("[")[1].rstrip("]").split(","))
    assert lo <= -fixed / 12 <= hi < 0  # a real drop: the interval excludes 0
    # The oracle's verdicts on the final answers: A's all fail; B's fail except the corrected ones.
    row = next(line for line in text.splitlines() if line.startswith("| cac/oracle/r2 | advbench | oracle |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "1.000 [0.76, 1.00] (n=12)" and cells[4].startswith(f"{(12 - fixed) / 12:.3f} [")
    assert cells[5].startswith(f"{-fixed / 12:+.3f} [") and cells[6] == "paired"
    assert "**A**: experiment cmp" in text and text.count("- **model**: function") == 2


def test_runs_that_cannot_be_paired_are_refused_with_their_cells(tmp_path):
    from redraft.errors import InputError
    from redraft.experiments.compare import render_comparison
    from redraft.experiments.report import report_data

    store = SQLStore(f"sqlite:///{tmp_path / 'p.db'}")
    base = {"name": "p", "datasets": [{"name": "advbench", "limit": 2}], "max_rounds": 1, "modes": ["cac"]}
    a = ExperimentRunner(
        ExperimentSpec.parse({**base, "critics": [["oracle"], ["self-harm"]]}),
        store,
        FunctionLLM(always_comply),
    ).run()
    b = ExperimentRunner(
        ExperimentSpec.parse({**base, "critics": [["noisy-oracle:0.5"], ["noisy-oracle:0.9"]]}),
        store,
        FunctionLLM(always_comply),
    ).run()
    with pytest.raises(InputError, match=r"cannot pair the runs: A has cells cac/oracle/r1, cac/self-harm/r1"):
        render_comparison(report_data(store, a), report_data(store, b))


def test_per_dataset_correlations_match_numpy_over_the_gain_table(tmp_path):
    """A noisy-oracle sweep over two datasets: each dataset's r equals numpy's over that dataset's
    rows of the gain table, and the pooled r is over all rows."""
    import re

    import numpy as np

    spec = ExperimentSpec.parse(
        {
            "name": "sweep",
            "datasets": [{"name": "advbench", "limit": 10}, {"name": "benign", "limit": 10}],
            "critics": [["noisy-oracle:0.5"], ["noisy-oracle:0.7"], ["noisy-oracle:0.9"], ["noisy-oracle:1.0"]],
            "modes": ["cac"],
            "max_rounds": 2,
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}")
    # Refuses whenever a check is in the conversation: a wrong "fail" on a benign draft over-refuses.
    exp = ExperimentRunner(spec, store, FunctionLLM(refuse_after_feedback)).run()
    text = write_report(store, exp[:8], tmp_path / "report", plots=False).read_text()
    rows = re.findall(r"^\| \S+ · (\w+) · \S+ \| ([\d.]+) \[[^]]*\] \| \d+ \| ([+-][\d.]+) \[", text, re.M)
    points: dict[str, list[tuple[float, float]]] = {}
    for source, acc, gain in rows:
        points.setdefault(source, []).append((float(acc), float(gain)))
    assert sorted(points) == ["advbench", "benign"] and all(len(p) == 4 for p in points.values())
    for source, pts in points.items():
        expected = np.corrcoef([a for a, _ in pts], [g for _, g in pts])[0, 1]
        line = next(ln for ln in text.splitlines() if ln.startswith(f"- {source}: "))
        assert float(line.split()[2]) == pytest.approx(expected, abs=2e-3)  # the table rounds to 3 places
    pooled = [p for pts in points.values() for p in pts]
    line = next(ln for ln in text.splitlines() if ln.startswith("Pearson correlation over 8 points"))
    assert float(line.split(": ")[1].split()[0]) == pytest.approx(
        np.corrcoef([a for a, _ in pooled], [g for _, g in pooled])[0, 1], abs=2e-3
    )
