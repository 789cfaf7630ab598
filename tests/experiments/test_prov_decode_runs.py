"""Prov-Decode as a setting of the correction loop: an experiment with ``prov_decode`` decodes
every draft with it, on the real embedded model, and the BCI critic sees the difference."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from redraft.agents.base import SamplingParams
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.provenance import SuffixIndex, build_index
from redraft.store.models import CritiqueRow, Example, Round
from redraft.store.sql import SQLStore

PROMPT = "Repeat this sentence exactly: The old lighthouse keeper painted every stone blue."


def first_drafts(store: SQLStore, experiment: str) -> list[tuple[str, bool | None]]:
    """(draft, bci verdict) of round 0 of every example."""
    runs = [r.id for r in store.experiment(experiment).runs]
    with store.session() as s:
        query = (
            select(Round.draft, CritiqueRow.passed)
            .join(Example, Round.example_id == Example.id)
            .join(CritiqueRow, CritiqueRow.round_id == Round.id)
            .where(Example.run_id.in_(runs), Round.index == 0, CritiqueRow.critic == "bci")
        )
        return [(d, p) for d, p in s.execute(query)]


@pytest.mark.llm
def test_an_experiment_with_prov_decode_no_longer_repeats_the_belief_corpus(embedded_llm, tmp_path):
    params = SamplingParams(max_new_tokens=24)
    [plain] = embedded_llm.generate([[{"role": "user", "content": PROMPT}]], params)
    # The belief corpus holds the model's own greedy answer, so plain decoding repeats it verbatim.
    (tmp_path / "beliefs.txt").write_text(f"{plain.text}\nAn unrelated line about gardens and rivers.\n")
    build_index([tmp_path / "beliefs.txt"], tmp_path / "idx", embedded_llm.hf_tokenizer)
    index = SuffixIndex.load(tmp_path / "idx")
    [spans] = index.maximal_spans([list(plain.token_ids)], min_len=1)
    tau = max(s.bci for s in spans) / 2
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": PROMPT, "labels": {"should_refuse": False}}) + "\n")
    base = {
        "name": "drift",
        "datasets": [{"name": "jsonl", "path": str(tmp_path / "p.jsonl")}],
        "critics": ["bci"],
        "max_rounds": 1,
        "correction": {"generation": {"max_new_tokens": 24}},
        "critic_options": {"index": str(tmp_path / "idx"), "bci_threshold": tau, "bci_min_len": 1},
    }
    store = SQLStore(f"sqlite:///{tmp_path / 'd.db'}")
    plain_run = ExperimentRunner(ExperimentSpec.parse(base), store, embedded_llm).run()
    decoded = {
        **base,
        "correction": {**base["correction"], "prov_decode": {"index": str(tmp_path / "idx"), "threshold": tau}},
    }
    pd_run = ExperimentRunner(ExperimentSpec.parse(decoded), store, embedded_llm).run()

    [(plain_draft, plain_passed)] = first_drafts(store, plain_run)
    [(pd_draft, pd_passed)] = first_drafts(store, pd_run)
    assert plain_draft == plain.text.strip() or plain_draft == plain.text
    assert (plain_passed, pd_passed) == (False, True)  # TraceShield flags the repeat, not the Prov-Decode draft
    assert pd_draft != plain_draft
    [run] = store.experiment(pd_run).runs
    assert run.config["prov_decode"]["threshold"] == pytest.approx(tau)  # the run records how it decoded
