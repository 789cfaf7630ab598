"""The default verifier's data and training, end to end on a small sample (seconds)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from redraft.critics.factuality import NLIVerifier, Passage
from redraft.critics.factuality import training as T
from redraft.critics.factuality import training_data as D
from redraft.critics.factuality.verifiers import default_verifier


def test_sources_pair_each_item_and_the_split_is_by_group():
    dialogue = list(itertools.islice(D.halueval_dialogue(), 40))
    summaries = list(itertools.islice(D.factual_summary_pairs(), 40))
    for pool in (dialogue, summaries):
        assert [e.label for e in pool[:4]] == [1, 0, 1, 0]
        assert pool[0].group == pool[1].group and pool[0].premise == pool[1].premise
    assert D.held_out("x") == D.held_out("x")
    assert 0.05 < sum(D.held_out(f"g{i}") for i in range(2000)) / 2000 < 0.15


def test_length_balancing_removes_the_length_signal():
    long_neg = [D.LabelledClaim("p", "word " * 12, 0, "s", f"n{i}") for i in range(10)]
    short_pos = [D.LabelledClaim("p", "word " * 2, 1, "s", f"p{i}") for i in range(10)]
    mixed = [D.LabelledClaim("p", "word " * 7, label, "s", f"m{i}") for i in range(6) for label in (0, 1)]
    balanced = D.length_balanced(long_neg + short_pos + mixed)
    assert sorted(len(e.claim.split()) for e in balanced) == [7] * 12  # only the bin with both labels
    assert sum(e.label for e in balanced) == 6


def test_metrics():
    m = T.Metrics.of([1, 1, 0, 0], [1, 0, 0, 1])
    assert (m.balanced_accuracy, m.precision, m.recall, m.n) == (0.5, 0.5, 0.5, 4)


def test_training_runs_end_to_end_and_the_result_loads(tmp_path):
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 80)))
    train, test = pool[:48], pool[48:64]
    metrics = T.train_verifier(tmp_path / "v", train, test, batch_size=8, max_length=64)
    assert metrics.n == 16 and 0.0 <= metrics.balanced_accuracy <= 1.0
    verifier = NLIVerifier(str(tmp_path / "v"), entail_label="supported")
    [v] = verifier.verify([test[0].claim], [[Passage(doc=0, title="", text=test[0].premise)]])
    assert 0.0 <= v.p_supported <= 1.0
    assert (tmp_path / "v" / "redraft_verifier.json").is_file()


def test_interrupted_training_leaves_nothing(tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", killed)
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 20)))
    with pytest.raises(KeyboardInterrupt):
        T.train_verifier(tmp_path / "v", pool[:8], pool[8:12], batch_size=8, max_length=32)
    assert list(tmp_path.iterdir()) == []


def test_swap_changes_exactly_one_number_or_name():
    import random

    rng = random.Random(0)
    sentence = "Marie Curie was born in Warsaw in 1867."
    for _ in range(30):
        out = D.swap(sentence, ["Lyon", "Oslo"], rng)
        assert out is not None and out != sentence
        changed = [(a, b) for a, b in zip(sentence.split(), out.split(), strict=False) if a != b]
        assert len(changed) == 1 and len(out.split()) == len(sentence.split())
        assert changed[0][0] in ("Warsaw", "1867.", "Curie") and changed[0][1] != changed[0][0]
    assert D.swap("it was very good indeed.", ["Lyon"], rng) is None


@pytest.mark.parametrize(
    ("question", "title", "statement"),
    [
        ("is the spleen part of the circulatory system", "Spleen", "The Spleen is part of the circulatory system."),
        ("are there any animals that are self aware", "Self-awareness", "There are some animals that are self aware."),
        ("can a return address be a po box", "Return address", "A Return address can be a po box."),
        (
            "did kevin durant play for the seattle supersonics",
            "Kevin Durant",
            "Kevin Durant did play for the seattle supersonics.",
        ),
        ("is the last of us a ps4 exclusive?", "The Last of Us", "The Last of Us is a ps4 exclusive."),
        ("is northern ireland and ireland the same", "Northern Ireland", None),  # a compound subject
        ("is salt water taffy", "Salt water taffy", None),  # nothing after the subject
        ("what is a spleen", "Spleen", None),  # not a yes/no question
        ("is a spleen an organ", "Liver", None),  # the title is not the subject
    ],
)
def test_boolq_questions_become_statements_by_moving_words(question, title, statement):
    assert D.boolq_statement(question, title) == statement


def test_boolq_claims_keep_the_annotators_answer_and_passage():
    claims = list(D.boolq_claims())
    assert len({e.group for e in claims}) == len(claims) > 500
    assert {e.source for e in claims} == {"boolq"} and {e.label for e in claims} == {0, 1}
    for e in claims[:50]:
        [passage] = e.passages()
        assert passage.title and passage.text and e.claim.endswith(".")
    # The benchmark's hand check must describe statements the rules still produce.
    checked = Path(__file__).parents[2] / "benchmarks" / "data" / "boolq_handcheck.jsonl"
    by_claim = {e.claim: e.label for e in claims}
    for line in checked.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert by_claim[row["claim"]] == row["label"], row["claim"]


def test_windowed_shallow_training_is_what_the_default_verifier_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("REDRAFT_CACHE_DIR", str(tmp_path))
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 60)))
    T.train_verifier(
        T.default_verifier_dir(),
        pool[:32],
        pool[32:40],
        batch_size=8,
        max_length=48,
        window_words=6,
        layers=2,
    )
    verifier = default_verifier()
    assert (verifier.window_words, verifier.max_length, verifier.per_passage) == (6, 48, False)
    assert verifier.model.config.num_hidden_layers == 2 and len(verifier.model.bert.encoder.layer) == 2
    [v] = verifier.verify([pool[0].claim], [pool[0].passages()])
    assert v.premise == pool[0].premise_for(6) and len(v.premise.split()) <= 6
    # `--verifier nli:DIR` reads a redraft-trained directory with its training settings too.
    from redraft.agents.testing import ScriptedLLM
    from redraft.critics import CriticOptions, make_critic

    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"title": "Paris", "text": "Paris is the capital of France."}\n')
    options = CriticOptions(kb=kb, verifier=f"nli:{T.default_verifier_dir()}")
    critic = make_critic("factuality", ScriptedLLM([]), options)
    assert (critic.verifier.window_words, critic.verifier.max_length) == (6, 48)
    with pytest.raises(ValueError, match="layers"):
        T.train_verifier(tmp_path / "x", pool[:8], pool[8:10], layers=99)


def test_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Oracle: the same run without interruption. Killed after step 5 of 8 with checkpoints every
    2 steps, a rerun continues from step 4 and ends with identical weights."""
    from safetensors.torch import load_file

    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 60)))
    train, test = pool[:32], pool[32:36]
    settings = {"batch_size": 8, "epochs": 2, "max_length": 48, "layers": 1, "checkpoint_every": 2}
    T.train_verifier(tmp_path / "whole", train, test, **settings)

    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def dies_at_step_6(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        T.train_verifier(tmp_path / "v", train, test, **settings)
    assert not (tmp_path / "v").exists() and (tmp_path / ".v.resume" / "state.pt").is_file()
    calls["n"] = -100  # no more deaths; count the steps the rerun takes
    T.train_verifier(tmp_path / "v", train, test, **settings)
    assert calls["n"] == -100 + 4  # steps 5..8 only: it resumed from the step-4 checkpoint
    assert not (tmp_path / ".v.resume").exists()
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(tmp_path / "v" / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


def test_a_checkpoint_of_other_data_is_not_resumed(tmp_path):
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 40)))
    settings = {"batch_size": 8, "max_length": 48, "layers": 1, "checkpoint_every": 1}
    resume = tmp_path / ".v.resume"
    resume.mkdir()
    torch.save({"fingerprint": "another run", "step": 3, "model": {}}, resume / "state.pt")
    # Loading that state would fail (no weights in it): the run must start over instead.
    T.train_verifier(tmp_path / "v", pool[:16], pool[16:20], **settings)
    assert (tmp_path / "v" / "redraft_verifier.json").is_file() and not resume.exists()


@pytest.fixture(scope="module")
def unknowns() -> list[D.LabelledClaim]:
    return list(D.wiki_unknowns(30))


def test_not_enough_evidence_claims_come_from_other_articles(unknowns):
    """A summary sentence against passages of other articles only, none of which holds it."""
    from redraft.critics.factuality.training_data import _kb_sentences

    sentences = {s: t for t, s in _kb_sentences()}
    assert len(unknowns) == 30 and {e.source for e in unknowns} == {"wiki-unknown"}
    for e in unknowns:
        assert e.label == D.UNKNOWN and e.claim in sentences and e.group == f"wiki-{sentences[e.claim]}"
        assert e.evidence and all(e.claim not in p.text and p.title != sentences[e.claim] for p in e.evidence)
    held = D.unknown_held_out(30)
    assert held and all(D.held_out(e.group) for e in held)
    assert {e.claim for e in held} <= {e.claim for e in unknowns}


@pytest.mark.parametrize(
    ("source", "claim", "evidence", "label"),
    [  # hand-labelled: is the evidence about the claim?
        ("wiki-vs-false-claims", "The dolphin has bony armor.", "Ball: balls are used for juggling.", D.UNKNOWN),
        ("wiki-vs-false-claims", "The dolphin has bony armor.", "Dolphin: dolphins are aquatic mammals.", D.REFUTED),
        ("factual-summary-pairs", "The dolphin has bony armor.", "Ball: balls are used for juggling.", D.REFUTED),
    ],
)
def test_a_false_claim_its_evidence_is_silent_on_is_relabelled_unknown(source, claim, evidence, label):
    e = D.LabelledClaim(evidence, claim, D.REFUTED, source, "g")
    supported = D.LabelledClaim(evidence, claim, D.SUPPORTED, source, "g")
    assert [x.label for x in D.silent_as_unknown([e, supported])] == [label, D.SUPPORTED]


def test_the_ranking_loss_never_pairs_a_not_enough_evidence_claim():
    a = D.LabelledClaim("p", "right", D.SUPPORTED, "s", "g")
    b = D.LabelledClaim("p", "wrong", D.REFUTED, "s", "g")
    c = D.LabelledClaim("p", "silent", D.UNKNOWN, "s", "g")
    units = T.pair_up([c, a, b])
    assert [[e.claim for e in u] for u in units] == [["silent"], ["right", "wrong"]]


def test_three_class_training_saves_feverish_labels_and_per_class_figures(tmp_path, unknowns):
    pool = D.length_balanced(list(itertools.islice(D.factual_summary_pairs(), 60)))
    train, test = pool[:32] + unknowns[:16], pool[32:40]
    T.train_verifier(
        tmp_path / "v", train, test, batch_size=8, max_length=48, layers=1, window_words=12, unknown_test=unknowns[-6:]
    )
    info = json.loads((tmp_path / "v" / "redraft_verifier.json").read_text())
    assert set(info["three_way"]) == {"supported", "refuted", "not enough evidence"}
    assert info["three_way"]["not enough evidence"]["n"] == 6 and info["held_out"]["n"] == 8
    verifier = NLIVerifier(str(tmp_path / "v"), window_words=12)
    assert verifier.model.config.id2label == T.LABELS and (verifier.entail, verifier.refute) == (1, 0)
    [v] = verifier.verify([unknowns[0].claim], [unknowns[0].passages()])
    assert v.p_refuted is not None and v.p_supported + v.p_refuted < 1.0
