"""Verifier accuracy on the held-out, balanced, length-controlled set (never trained on), and
per-claim latency of the full critic (claim split + retrieval + verification).

    redraft verifier train                       # once: builds the default verifier
    python benchmarks/factuality_accuracy.py [--skip-llm] [--per-source 300] [--also DIR ...]

Rows: the default MiniLM cross-encoder, the FActScore LLM verifier on the embedded SmolLM2-135M,
the lexical-overlap baseline, and any other trained verifier directories given with ``--also``.
Each verifier gets the passages the knowledge base retrieved (Wikipedia rows) or the source's
own premise, as the critic would hand them over.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from redraft.critics import DraftContext
from redraft.critics.factuality import FactualityCritic, KnowledgeBase, LexicalVerifier, LLMVerifier
from redraft.critics.factuality.training import Metrics, dataset
from redraft.critics.factuality.verifiers import Verifier, default_verifier, trained_verifier


def evaluate(verifier: Verifier, examples) -> tuple[Metrics, float, dict[str, Metrics]]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--per-source", type=int, default=300, help="held-out examples per source")
    ap.add_argument("--also", action="append", default=[], help="another trained verifier directory to compare")
    args = ap.parse_args()
    _, test = dataset(test_per_source=args.per_source)
    rows = [
        ("default verifier (MiniLM cross-encoder)", default_verifier()),
        ("lexical overlap (baseline)", LexicalVerifier()),
        *((f"trained verifier at {path}", trained_verifier(path)) for path in args.also),
    ]
    if not args.skip_llm:
        from redraft.agents import default_llm

        rows.insert(1, ("LLM verifier, FActScore prompt, SmolLM2-135M", LLMVerifier(default_llm())))
    print(f"held-out: {len(test)} examples, balanced and length-controlled, none used in training\n")
    print(f"{'verifier':<48} {'bal. acc':>8} {'precision':>9} {'recall':>7} {'ms/claim':>9}   per source (bal. acc)")
    for name, verifier in rows:
        m, ms, per = evaluate(verifier, test)
        detail = ", ".join(f"{s} {v.balanced_accuracy:.2f}" for s, v in sorted(per.items()))
        print(f"{name:<48} {m.balanced_accuracy:8.3f} {m.precision:9.3f} {m.recall:7.3f} {ms:9.1f}   {detail}")

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
