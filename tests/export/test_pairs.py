"""DPO recipes (revision, flame), SFT rows, dedupe, provenance, and TRL's own DPO preprocessing."""

from __future__ import annotations

import copy
import math

import pytest

from redraft.errors import InputError
from redraft.export import FlameFilter, dpo_pairs, save_to_disk, sft_rows
from redraft.store import ExampleInfo, OutcomeInfo, RunInfo, SQLStore


def rnd(index, draft, *, good=None, passed=None, fact=None):
    critiques = []
    if passed is not None:
        critiques.append(_crit("self", passed, float(passed)))
    if fact is not None:
        critiques.append(_crit("factuality", fact >= 0.8, fact))
    record = {
        "index": index,
        "draft": draft,
        "n_tokens": 1,
        "finish_reason": "stop",
        "gen_latency_s": 0.0,
        "critiques": critiques,
    }
    if good is not None:
        record["judgements"] = [{"judge": "answer", "good": good, "score": float(good), "detail": ""}]
    return record


def _crit(name, passed, score):
    return {"critic": name, "passed": passed, "score": score, "feedback": "", "evidence": [], "latency_s": 0.0}


def log(store, run_id, key, prompt, rounds, status="max_rounds"):
    ex = ExampleInfo(key=key, prompt=prompt, labels={"judge": "answer", "references": ["x"]})
    for i, r in enumerate(rounds):
        last = i == len(rounds) - 1
        outcome = OutcomeInfo(status=status, rounds_used=len(rounds), final=r["draft"]) if last else None
        store.record_round(run_id, ex, r, outcome)


@pytest.fixture
def store(store_url):
    s = SQLStore(store_url)
    yield s
    s.close()


# What build_graph records for these critics: their names and which way their scores point.
CRITICS = [{"name": "self", "higher_is_better": True}, {"name": "factuality", "higher_is_better": True}]


def new_run(store, experiment=None, cell=None):
    return store.start_run(RunInfo(model_id="m", config={}, critics=CRITICS, experiment_id=experiment, cell=cell))


def test_revision_recipe_needs_a_confirmed_flip(store):
    run = new_run(store)
    log(store, run, "flip", "Q1", [rnd(0, "bad", good=False, passed=False), rnd(1, "good", good=True, passed=True)])
    log(store, run, "still-bad", "Q2", [rnd(0, "bad", good=False), rnd(1, "worse", good=False)])
    log(store, run, "worsened", "Q3", [rnd(0, "good", good=True), rnd(1, "bad", good=False)])
    # The critics call this a correction (fail → accepted) but the judge says the final answer
    # is still wrong: no pair.
    log(
        store,
        run,
        "critic-fooled",
        "Q4",
        [rnd(0, "a", good=False, passed=False), rnd(1, "b", good=False, passed=True)],
        "accepted",
    )
    # No judge labels at all: the critics stand in, unless judge_only.
    log(store, run, "unjudged", "Q5", [rnd(0, "a", passed=False), rnd(1, "b", passed=True)], "accepted")
    rows = list(dpo_pairs(store, run, fmt="standard"))
    got = {(r["redraft"]["example"], r["chosen"], r["rejected"], r["redraft"]["confirmed_by"]) for r in rows}
    assert got == {("flip", "good", "bad", "judge"), ("unjudged", "b", "a", "critics")}
    assert [r["redraft"]["example"] for r in dpo_pairs(store, run, judge_only=True)] == ["flip"]


def test_flame_recipe_ranks_drops_ties_and_guards_the_other_reward(store):
    run = new_run(store)
    log(
        store,
        run,
        "ranked",
        "Q1",
        [rnd(0, "a", fact=0.2, passed=True), rnd(1, "b", fact=0.9, passed=True), rnd(2, "c", fact=0.9, passed=True)],
    )
    log(store, run, "tie", "Q2", [rnd(0, "a", fact=0.5), rnd(1, "b", fact=0.5)])
    log(store, run, "gap", "Q3", [rnd(0, "a", fact=0.1, passed=True), rnd(1, "b", fact=1.0, passed=False)])
    flame = FlameFilter(reward="factuality", guard="self", max_gap=0.5)
    rows = list(dpo_pairs(store, run, recipe="flame", flame=flame, fmt="standard"))
    assert [(r["redraft"]["example"], r["chosen"], r["rejected"]) for r in rows] == [("ranked", "c", "a")]
    assert rows[0]["redraft"]["chosen_round"] == 2  # a tie for best goes to the later revision
    # Without the guard, the pair whose other reward moved by 1.0 is kept.
    unguarded = dpo_pairs(store, run, recipe="flame", flame=FlameFilter(reward="factuality"))
    assert {r["redraft"]["example"] for r in unguarded} == {"ranked", "gap"}


def test_pairs_are_deduplicated_across_the_runs_of_an_experiment(store):
    exp = store.start_experiment("e", {})
    for cell in ("a", "b"):
        run = new_run(store, exp, cell)
        log(store, run, "k", "Q", [rnd(0, "bad", good=False), rnd(1, "good", good=True)])
    rows = list(dpo_pairs(store, exp[:8]))
    assert len(rows) == 1 and rows[0]["prompt"] == [{"role": "user", "content": "Q"}]


def test_sft_rows_keep_good_final_answers(store):
    run = new_run(store)
    log(store, run, "good", "Q1", [rnd(0, "bad", good=False), rnd(1, "fixed", good=True)])
    log(store, run, "bad", "Q2", [rnd(0, "bad", good=False)])
    log(store, run, "accepted", "Q3", [rnd(0, "fine", passed=True)], "accepted")
    rows = list(sft_rows(store, run, fmt="standard"))
    assert [(r["prompt"], r["completion"], r["redraft"]["confirmed_by"]) for r in rows] == [
        ("Q1", "fixed", "judge"),
        ("Q3", "fine", "critics"),
    ]


def test_unknown_recipe_and_empty_save_to_disk_are_clear_errors(store, tmp_path):
    run = new_run(store)
    with pytest.raises(InputError, match="known recipes: revision, flame"):
        list(dpo_pairs(store, run, recipe="best"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="nothing to export"):
        save_to_disk(dpo_pairs(store, run), tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


@pytest.mark.filterwarnings("ignore")  # TRL and transformers warn about the toy model's config
@pytest.mark.parametrize("fmt", ["conversational", "standard"])
def test_export_trains_through_trls_own_dpo_preprocessing(store, tmp_path, fmt):
    """The real consumer: TRL's DPOTrainer tokenizes the exported rows (chat template for the
    conversational format) and takes optimizer steps on a tiny random model."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from redraft.agents.embedded import embedded_model_dir
    from tests.tiny import tiny_llama

    run = new_run(store)
    for i in range(4):
        log(
            store,
            run,
            f"k{i}",
            f"Capital of country {i}?",
            [rnd(0, f"Lyon {i}.", good=False), rnd(1, f"Paris {i}.", good=True)],
        )
    n = save_to_disk(dpo_pairs(store, run, fmt=fmt), tmp_path / "pairs")
    dataset = load_from_disk(str(tmp_path / "pairs"))
    assert n == 4 and "redraft" in dataset.column_names

    tok = AutoTokenizer.from_pretrained(embedded_model_dir())
    model = tiny_llama(tok, hidden=16, layers=1)
    args = DPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=2,
        max_steps=2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = DPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=dataset, processing_class=tok
    )
    first = trainer.train_dataset[0]
    chosen = tok.decode(first["chosen_ids"])
    assert "Paris 0." in chosen and "Lyon" not in chosen
    if fmt == "conversational":  # the chat template was applied to the prompt
        assert "<|im_start|>user" in tok.decode(first["prompt_ids"])
    result = trainer.train()
    # At initialization the policy equals the reference, so the sigmoid DPO loss starts at ln 2.
    assert result.global_step == 2 and result.training_loss == pytest.approx(math.log(2), abs=0.01)


def test_a_nominal_judge_grades_no_critic_and_makes_no_pair(store):
    """The drift datasets label drafts with a nominal judge (labels["judge_nominal"]): the label
    is stored and shown, but it neither counts toward a critic's accuracy nor confirms a DPO pair,
    in the store as in the loop. The same rounds under a real judge do both (the control)."""
    from redraft.analysis.metrics import critic_accuracy

    run = new_run(store)
    rounds = [rnd(0, "bad", good=False, passed=False), rnd(1, "good", good=True, passed=True)]
    for key, nominal in (("real", False), ("nominal", True)):
        labels = {"judge": "answer", "references": ["x"], **({"judge_nominal": True} if nominal else {})}
        ex = ExampleInfo(key=key, prompt=f"Q {key}", labels=labels)
        for i, r in enumerate(rounds):
            outcome = OutcomeInfo(status="accepted", rounds_used=2, final=r["draft"]) if i == 1 else None
            store.record_round(run, ex, r, outcome)
    judged = {
        (e.key, r.index): [(c.truth, c.correct) for c in r.critiques] for e in store.examples(run) for r in e.rounds
    }
    assert judged == {
        ("real", 0): [(False, True)],
        ("real", 1): [(True, True)],
        ("nominal", 0): [(None, None)],
        ("nominal", 1): [(None, None)],
    }
    assert [len(e.rounds[0].judgements) for e in store.examples(run)] == [1, 1]  # still recorded
    [acc] = critic_accuracy(store, [run], by_round=False)
    assert (acc.tp + acc.fp + acc.tn + acc.fn, acc.unlabelled) == (2, 2)
    rows = list(dpo_pairs(store, run, fmt="standard", judge_only=True))
    assert [r["redraft"]["example"] for r in rows] == ["real"]
    flame = list(dpo_pairs(store, run, recipe="flame", flame=FlameFilter(reward="judge"), fmt="standard"))
    assert [r["redraft"]["example"] for r in flame] == ["real"]
