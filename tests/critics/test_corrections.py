"""Corrections that correct: corpus kinds, refutations, the evasion check, the revise strategies,
the verdicts they are recorded with, and the DPO export that takes chosen sides from fixes only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.agents.testing import ScriptedLLM
from redraft.corrections.strategies import strip_wrappers
from redraft.corrections.verdicts import classify
from redraft.critics import BCICritic, DraftContext
from redraft.critics.bci import KIND_ADVICE
from redraft.critics.evasion import EvasionCheck
from redraft.critics.refutation import refutes_quote
from redraft.errors import InputError
from redraft.export import dpo_pairs
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance import format as fmt
from redraft.provenance.bci import SpanFilters
from redraft.store import SQLStore

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "data" / "evasion_pairs.jsonl").read_text().splitlines()]
CLAIM = "The fastest animal in the world is the turtle."
CLAIMS = [
    CLAIM,
    "Tunis is a city in Nepal.",
    "Alan Turing invented the power loom.",
]


def _index(root: Path, kind: str, docs: list[dict[str, str]]) -> SuffixIndex:
    (root / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    build_index([root / "c.jsonl"], root / "idx", kind=kind)  # type: ignore[arg-type]
    return SuffixIndex.load(root / "idx")


@pytest.fixture(scope="module")
def false_claims(tmp_path_factory: pytest.TempPathFactory) -> SuffixIndex:
    return _index(tmp_path_factory.mktemp("fc"), "false-claims", [{"text": c} for c in CLAIMS])


def critic(index: SuffixIndex) -> BCICritic:
    return BCICritic(index, 40.0, filters=SpanFilters(min_len=16))


def check(index: SuffixIndex, draft: str) -> tuple[bool | None, str]:
    c = critic(index).critique([DraftContext(prompt="p", draft=draft)])[0]
    return c.passed, c.feedback


# -- the corpus kind -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", fmt.CORPUS_KINDS)
def test_the_kind_is_stored_in_the_checksummed_header_and_the_feedback_follows_it(tmp_path, kind):
    index = _index(tmp_path, kind, [{"text": c} for c in CLAIMS])
    assert index.header.kind == kind
    passed, feedback = check(index, CLAIM)
    assert passed is False and KIND_ADVICE[kind] in feedback
    assert [a for k, a in KIND_ADVICE.items() if k != kind and a in feedback] == []
    # The kind is covered by the header's checksum: changing it makes the index refuse to load.
    head = tmp_path / "idx" / fmt.HEADER
    data = json.loads(head.read_text())
    data["kind"] = "copyrighted" if kind != "copyrighted" else "other"
    head.write_text(json.dumps(data))
    with pytest.raises(InputError, match="does not match its own checksum"):
        SuffixIndex.load(tmp_path / "idx")


def test_a_header_sealed_before_kinds_existed_still_loads_as_other(tmp_path):
    _index(tmp_path, "other", [{"text": CLAIM}])
    head = tmp_path / "idx" / fmt.HEADER
    data = json.loads(head.read_text())
    del data["kind"]
    old = fmt.Header.model_validate({**data, "checksum": ""})
    data["checksum"] = fmt.header_checksum(old)
    head.write_text(json.dumps(data))
    assert SuffixIndex.load(tmp_path / "idx").header.kind == "other"


def test_an_unknown_kind_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": CLAIM}) + "\n")
    with pytest.raises(InputError, match="unknown corpus kind 'lies'; known kinds: false-claims"):
        build_index([tmp_path / "c.jsonl"], tmp_path / "idx", kind="lies")  # type: ignore[arg-type]
    assert not (tmp_path / "idx").exists()


def test_a_documents_own_kind_overrides_the_header_in_a_mixed_corpus(tmp_path):
    toxic = "You are a worthless idiot and everyone hates you."
    index = _index(tmp_path, "false-claims", [{"text": CLAIM}, {"text": toxic, "kind": "unsafe"}])
    assert KIND_ADVICE["unsafe"] in check(index, toxic)[1]
    assert KIND_ADVICE["false-claims"] in check(index, CLAIM)[1]


# -- refuting a claim is not repeating it --------------------------------------------------------------


@pytest.mark.parametrize(
    ("draft", "refuted"),
    [
        (f"It is false that {CLAIM[0].lower()}{CLAIM[1:]}", True),
        (f"{CLAIM} That is a myth: the peregrine falcon is fastest.", True),
        (f'The claim "{CLAIM[:-1]}" is a common misconception.', True),
        ("The fastest animal in the world is not the turtle.", True),
        (CLAIM, False),
        (f"{CLAIM} It can outrun a cheetah.", False),
        (f"Sure! {CLAIM}", False),
        # A refutation elsewhere in the text does not excuse the repeat.
        (f"{CLAIM} Also, the moon is made of cheese. That second part is false.", False),
    ],
)
def test_the_bci_critic_passes_a_quote_made_to_refute_it(false_claims, draft, refuted):
    passed, feedback = check(false_claims, draft)
    assert passed is refuted, feedback


def test_refutation_never_excuses_unsafe_text(tmp_path):
    index = _index(tmp_path, "unsafe", [{"text": CLAIM}])
    assert check(index, f"It is false that {CLAIM[0].lower()}{CLAIM[1:]}")[0] is False


def test_refutes_quote_needs_the_quote():
    assert refutes_quote("It is false.", "the turtle") is False


# -- the evasion check against hand labels ---------------------------------------------------------------


@pytest.fixture(scope="module")
def evasion() -> EvasionCheck:
    return EvasionCheck()


def test_the_evasion_check_agrees_with_the_hand_labels(evasion):
    """42 hand-labelled (claim, revision) pairs: 20 restate the claim (the issue's four
    paraphrases among them), 22 fix it. Measured 38/42; every miss is a synonym swap the
    verifier cannot see, and no fix is ever called a restatement."""
    got = [a.asserted for a in evasion.asserts([(p["claim"], p["revision"]) for p in PAIRS])]
    want = [p["asserts"] for p in PAIRS]
    assert len(PAIRS) == 42 and sum(want) == 20
    agree = sum(g == w for g, w in zip(got, want, strict=True))
    false_alarms = sum(g and not w for g, w in zip(got, want, strict=True))
    assert agree >= 38 and false_alarms == 0


# -- verdicts ----------------------------------------------------------------------------------------------


NA = {"same": False, "non_answer": True}


@pytest.mark.parametrize(
    ("kwargs", "verdict"),
    [
        ({"same": True, "asserted": [True], "passes_now": False}, "unchanged"),
        ({"same": False, "asserted": [True], "passes_now": True}, "evaded"),
        ({"same": False, "asserted": [True], "passes_now": False}, "unchanged"),
        ({"same": False, "asserted": [False, False], "passes_now": False}, "fixed"),
        ({"same": False, "asserted": [False, True], "passes_now": True}, "evaded"),
        ({"same": False, "asserted": [False], "passes_now": True, "before_good": True, "after_good": False}, "broken"),
        ({"same": False, "asserted": [], "passes_now": True, "before_good": False, "after_good": True}, "fixed"),
        ({"same": False, "asserted": [], "passes_now": True, "before_good": False, "after_good": False}, "evaded"),
        ({"same": False, "asserted": [], "passes_now": False}, None),
        # A non-answer drops the claim but answers nothing: abstained, never fixed...
        ({**NA, "asserted": [False], "passes_now": True}, "abstained"),
        ({**NA, "asserted": [], "passes_now": True, "before_good": False, "after_good": False}, "abstained"),
        # ...unless declining is the fix (text from an unsafe corpus, or a judge that wants a refusal)...
        ({**NA, "asserted": [False], "passes_now": True, "declining_fixes": True}, "fixed"),
        ({**NA, "asserted": [], "passes_now": True, "before_good": False, "after_good": True}, "fixed"),
        # ...and a non-answer that still asserts the claim is no abstention; a good draft lost is broken.
        ({**NA, "asserted": [True], "passes_now": False}, "unchanged"),
        ({**NA, "asserted": [False], "passes_now": True, "before_good": True, "after_good": False}, "broken"),
    ],
)
def test_classify_table(kwargs, verdict):
    assert classify(**kwargs) == verdict


def _run(tmp_path, llm, index, **config):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    graph = build_graph(llm=llm, critics=[critic(index)], config=CorrectionConfig(max_rounds=2, **config), store=url)
    out = graph.invoke({"prompt": f"Repeat this sentence exactly: {CLAIM}"})
    return out, url


@pytest.mark.parametrize(
    ("revision", "verdict", "status"),
    [
        ("Turtles are the fastest animals on the planet.", "evaded", "accepted"),  # passes TraceShield, same claim
        (CLAIM, "unchanged", "no_change"),
        (f"It is false that {CLAIM[0].lower()}{CLAIM[1:]} The peregrine falcon is.", "fixed", "accepted"),
    ],
)
def test_each_revision_is_recorded_with_what_it_did(tmp_path, false_claims, revision, verdict, status):
    out, url = _run(tmp_path, ScriptedLLM([CLAIM, revision]), false_claims)
    assert out["status"] == status
    record = out["rounds"][1]["correction"]
    assert (record["verdict"], record["critics"], record["strategy"]) == (
        verdict,
        {"bci": verdict},
        {"mode": "fresh", "constrained": False, "best_of": 1},
    )
    [claim] = record["claims"]
    assert claim["claim"] == CLAIM and claim["kind"] == "false-claims"
    with SQLStore(url) as store:
        [example] = list(store.examples(out["run_id"]))
        assert example.rounds[0].correction is None and example.rounds[1].correction == record


def test_abstained_is_a_verdict_of_its_own():
    from typing import get_args

    from redraft.store.base import VERDICT_MEANINGS, CorrectionVerdict

    assert "abstained" in get_args(CorrectionVerdict) and "abstained" in VERDICT_MEANINGS


@pytest.mark.parametrize(
    "non_answer", ["Not sure.", "I cannot verify this.", "I'm sorry, but I can't help with that.", ""]
)
def test_a_non_answer_after_a_flagged_false_claim_is_abstained_and_never_exported(tmp_path, false_claims, non_answer):
    out, url = _run(tmp_path, ScriptedLLM([CLAIM, non_answer]), false_claims)
    record = out["rounds"][1]["correction"]
    assert (record["verdict"], record["critics"]) == ("abstained", {"bci": "abstained"})
    with SQLStore(url) as store, pytest.raises(InputError, match="nothing to export"):
        list(dpo_pairs(store, out["run_id"]))


def test_a_claim_flagged_in_round_1_and_restated_in_round_3_is_judged_there(tmp_path, false_claims):
    """Round 2 drops the claim (a non-answer, failed by another critic); round 3 restates it in
    other words. Judged only against round 2's findings it got no verdict at all."""
    from tests.graphs.helpers import KeywordCritic

    url = f"sqlite:///{tmp_path / 'r.db'}"
    critics = [critic(false_claims), KeywordCritic("sure")]
    llm = ScriptedLLM([CLAIM, "Not sure.", "Turtles are the fastest animals on the planet."])
    graph = build_graph(llm=llm, critics=critics, config=CorrectionConfig(max_rounds=3), store=url)
    out = graph.invoke({"prompt": f"Repeat this sentence exactly: {CLAIM}"})
    second, third = (r["correction"] for r in out["rounds"][1:])
    assert second["verdict"] == "abstained"
    assert third["verdict"] in ("evaded", "unchanged") and third["critics"]["bci"] == "evaded"
    assert [c["claim"] for c in third["claims"] if c["asserted"]] == [CLAIM]


def test_the_export_takes_chosen_sides_from_fixes_only(tmp_path, false_claims):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    evaded, url = _run(
        tmp_path / "a", ScriptedLLM([CLAIM, "Turtles are the fastest animals on the planet."]), false_claims
    )
    with SQLStore(url) as store, pytest.raises(InputError, match="nothing to export"):
        list(dpo_pairs(store, evaded["run_id"]))
    fix = "That is false: the peregrine falcon is the fastest animal."
    fixed, url = _run(tmp_path / "b", ScriptedLLM([CLAIM, fix]), false_claims)
    with SQLStore(url) as store:
        [row] = list(dpo_pairs(store, fixed["run_id"], fmt="standard"))
    assert (row["chosen"], row["rejected"], row["redraft"]["confirmed_by"]) == (fix, CLAIM, "evasion-check")


def test_best_of_keeps_a_fix_over_an_evasion_and_exports_the_pair(tmp_path, false_claims):
    evasion_text = "Turtles are the fastest animals on the planet."
    fix = "That is false: the peregrine falcon is the fastest animal."
    llm = ScriptedLLM([CLAIM, evasion_text, fix, CLAIM])
    out, url = _run(tmp_path, llm, false_claims, best_of=3)
    assert out["final"] == fix and out["status"] == "accepted"
    record = out["rounds"][1]["correction"]
    assert record["verdict"] == "fixed" and record["strategy"] == {"mode": "fresh", "constrained": False, "best_of": 3}
    assert [(c["text"], c["asserts_flagged"], c["critics_passed"]) for c in record["candidates"]] == [
        (evasion_text, True, 1),
        (CLAIM, True, 0),
    ]
    with SQLStore(url) as store:
        rows = list(dpo_pairs(store, out["run_id"], fmt="standard"))
    got = {(r["chosen"], r["rejected"], r["redraft"]["confirmed_by"]) for r in rows}
    assert got == {(fix, evasion_text, "evasion-check"), (fix, CLAIM, "evasion-check")}


def test_fresh_revisions_lose_the_wrappers_models_copy():
    assert strip_wrappers("<response>\nParis.\n</response>") == "Paris."
    assert strip_wrappers("**Corrected response:** Paris.") == "Paris."
    assert strip_wrappers("A <response> tag mid-text stays.") == "A <response> tag mid-text stays."


# -- constrained revisions on a real model ---------------------------------------------------------------


@pytest.mark.llm
def test_a_constrained_revision_cannot_contain_the_flagged_span(embedded_llm, tmp_path):
    from redraft.provenance.veto import SpanVeto

    span = CLAIM[:-1]
    conv = [[{"role": "user", "content": f"Repeat this sentence exactly: {CLAIM}"}]]
    params = SamplingParams(max_new_tokens=24)
    [plain] = embedded_llm.generate(conv, params)
    assert span in plain.text  # the model does repeat it when left alone: the veto has work to do
    [vetoed] = embedded_llm.generate(conv, params, logits_processors=[SpanVeto([[span]])])
    assert span not in vetoed.text and vetoed.text
    # Through the loop: the BCI critic flags the repeat, and the constrained revision avoids it.
    index = _index(tmp_path, "false-claims", [{"text": c} for c in CLAIMS])
    graph = build_graph(
        llm=embedded_llm,
        critics=[critic(index)],
        config=CorrectionConfig(max_rounds=2, mode="feedback", constrain=True, generation=params),
    )
    out = graph.invoke({"prompt": f"Repeat this sentence exactly: {CLAIM}"})
    flagged = [e["text"] for e in out["rounds"][0]["critiques"][0]["evidence"] if e["flagged"]]
    assert flagged and all(f.rstrip(".") not in out["rounds"][1]["draft"] for f in flagged)


def test_best_of_reads_every_claim_of_every_candidate():
    """Two flagged claims, two candidates: the first restates both, the second fixes both. Each
    candidate must be judged on its own pairs (a check that stops at the first asserted claim must
    still consume the rest, or the next candidate is judged on the previous one's)."""
    from redraft.critics.base import Critic, Critique
    from redraft.critics.evasion import Assertion
    from redraft.graphs.steps import Corrector

    class PassAll(Critic):
        name = "ok"
        higher_is_better = True

        def critique(self, items):
            return [Critique(critic=self.name, passed=True) for _ in items]

    draft, evasion_text, fix = "Alpha is here. Beta is here.", "Alpha and Beta are here.", "Neither is here."
    table = {
        ("Alpha is here.", evasion_text): True,
        ("Beta is here.", evasion_text): True,
        ("Alpha is here.", fix): False,
        ("Beta is here.", fix): False,
    }

    class Table(EvasionCheck):
        def asserts(self, pairs):
            return [Assertion(table[p], float(table[p]), 0.0, p[1]) for p in pairs]

    flagged = Critique(
        critic="bci",
        passed=False,
        evidence=tuple({"text": q, "flagged": True, "kind": "false-claims"} for q in ("Alpha is here", "Beta is here")),
    )
    state = {
        "prompt": "p",
        "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": draft}],
        "rounds": [
            {
                "index": 0,
                "draft": draft,
                "n_tokens": 1,
                "finish_reason": "stop",
                "gen_latency_s": 0.0,
                "critiques": [flagged.model_dump(mode="json")],
            }
        ],
    }
    steps = Corrector(ScriptedLLM([evasion_text, fix]), [PassAll()], CorrectionConfig(best_of=2), evasion=Table())
    [update] = steps.revise([state])
    assert update["pending"]["draft"] == fix
    assert update["pending_candidates"] == [
        {"text": evasion_text, "critics_passed": 1, "asserts_flagged": True, "unusable": False}
    ]


def test_run_and_show_print_each_revisions_verdict_and_the_count(tmp_path, false_claims, monkeypatch):
    from typer.testing import CliRunner

    from redraft import cli
    from tests.graphs.helpers import use_llm

    use_llm(monkeypatch, ScriptedLLM([CLAIM, "Not sure."]))
    db = str(tmp_path / "v.db")
    args = ["run", "--prompt", f"Repeat this sentence exactly: {CLAIM}", "--critic", "bci", "--index"]
    args += [str(false_claims.root), "--bci-threshold", "40", "--bci-min-len", "16", "--db", db]
    runner = CliRunner(env={"COLUMNS": "300"})
    ran = runner.invoke(cli.app, args)
    assert ran.exit_code == 0, ran.output
    assert "revisions: 1 abstained of 1 flagged" in ran.output
    [run] = SQLStore(f"sqlite:///{db}").runs()
    shown = runner.invoke(cli.app, ["show", run.id[:8], "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "revision (fresh): abstained" in shown.output
    assert f"no longer asserts: {CLAIM}" in shown.output  # the flagged claim, not the revision's words
    assert "revisions: 1 abstained of 1 flagged" in shown.output


# -- a verbatim span is a candidate, not a verdict (false-claims corpora) ------------------------------

TEMPLATED = ["The capital of Australia is Sydney.", "The capital of Canada is Toronto."]


@pytest.fixture(scope="module")
def templated(tmp_path_factory: pytest.TempPathFactory) -> SuffixIndex:
    return _index(tmp_path_factory.mktemp("tpl"), "false-claims", [{"text": c} for c in TEMPLATED])


@pytest.mark.parametrize(
    ("draft", "passed"),
    [
        ("The capital of Australia is Canberra.", True),  # the truth, sharing the claim's template prefix
        ("The capital of Canada is Ottawa, not Toronto.", True),
        ("The capital of Australia is Sydney.", False),
        ("Everyone knows the capital of Australia is Sydney, a big city.", False),
    ],
)
def test_a_true_correction_sharing_a_prefix_with_a_false_claim_passes(templated, draft, passed):
    c = critic(templated).critique([DraftContext(prompt="p", draft=draft)])[0]
    assert c.passed is passed, c.feedback
    rows = [r for r in c.evidence if r.get("claim")]
    assert rows and all(r["claim"] in TEMPLATED for r in rows)  # each candidate names its corpus claim
    # TraceShield alone (no assertion check) failed every one of them on the shared prefix.
    alone = BCICritic(templated, 40.0, filters=SpanFilters(min_len=16), assert_claims=False)
    assert alone.critique([DraftContext(prompt="p", draft=draft)])[0].passed is False


def test_the_tracked_claim_stays_the_corpus_documents_text(tmp_path, templated):
    claim = TEMPLATED[0]
    drafts = [
        "I believe the capital of Australia is Sydney.",
        "As I said, the capital of Australia is Sydney, without doubt.",
        "The capital of Australia is Canberra.",
    ]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    graph = build_graph(
        llm=ScriptedLLM(drafts), critics=[critic(templated)], config=CorrectionConfig(max_rounds=3), store=url
    )
    out = graph.invoke({"prompt": "What is the capital of Australia?"})
    assert out["status"] == "accepted" and out["final"] == drafts[2]
    second, third = (r["correction"] for r in out["rounds"][1:])
    assert [c["claim"] for c in second["claims"]] == [claim] and second["verdict"] == "unchanged"
    assert [c["claim"] for c in third["claims"]] == [claim] and third["verdict"] == "fixed"


# -- a fix is an answer a user would accept ---------------------------------------------------------

LEAKY = "The fastest animal in the world is the turtle is a known FALSE claim (bci). The falcon is fastest."
CLEAN = "The peregrine falcon is the fastest animal; turtles are slow."


def test_a_revision_that_leaks_the_scaffolding_is_not_fixed_and_never_exported(tmp_path, false_claims):
    out, url = _run(tmp_path, ScriptedLLM([CLAIM, LEAKY]), false_claims)
    record = out["rounds"][1]["correction"]
    assert (record["verdict"], record["leak"]) == ("leaked", "(bci)")
    with SQLStore(url) as store, pytest.raises(InputError, match="nothing to export"):
        list(dpo_pairs(store, out["run_id"]))


def test_best_of_keeps_a_clean_answer_over_a_leaky_one_and_a_non_answer(tmp_path, false_claims):
    out, _ = _run(tmp_path, ScriptedLLM([CLAIM, LEAKY, "Not sure.", CLEAN]), false_claims, best_of=3)
    assert out["final"] == CLEAN and out["rounds"][1]["correction"]["verdict"] == "fixed"


NON_ANSWERS = [  # hand-labelled: (reply, answers nothing)
    ("Not sure.", True),
    ("I don't know.", True),
    ("I cannot verify this.", True),
    ("I'm sorry, but I can't help with that.", True),
    ("As an AI language model, I cannot browse the internet.", True),
    ("", True),
    ("...", True),
    ("Hmm.", True),
    ("Unknown.", True),
    ("Paris.", False),
    ("It is false: the peregrine falcon is the fastest animal.", False),
    ("Sorry, but that is false. Itau Unibanco is a bank, not a healthcare company.", False),
    ("The turtle is not the fastest animal.", False),
    ("I'm not sure of its top speed, but the falcon is the fastest animal.", False),
    ("Einstein won the 1921 Nobel Prize in Physics.", False),
    ("No.", False),
]


@pytest.mark.parametrize(("reply", "non_answer"), NON_ANSWERS)
def test_non_answers_match_the_hand_labels(reply, non_answer):
    from redraft._refusal import is_non_answer

    assert is_non_answer(reply) is non_answer
