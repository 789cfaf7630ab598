"""Source-article recall of the knowledge base's retrieval: how often the article a sentence came
from is among the top 1, 3 and 5 passages, with BM25's top hit kept first (the default) against
the old title-links-first ranking (the named baseline), on the same sentences in the same run.

    python benchmarks/kb_retrieval.py [--n 400] [--seed 0]

The sentences are a seeded sample of the default knowledge base's own sentences (Wikipedia
vital-article summaries, split as the critic splits claims), so each has exactly one source
article. A sentence often names other articles ("born in Paris"), which is what title links
alone get wrong.
"""

from __future__ import annotations

import argparse
import random
import time

from redraft.critics.factuality.kb import KnowledgeBase
from redraft.critics.factuality.training_data import _kb_sentences


def recall(kb: KnowledgeBase, sample: list[tuple[str, str]], *, keep_bm25_top: bool) -> tuple[dict[int, float], float]:
    """Recall@1/3/5 of the source title, and milliseconds per query."""
    start = time.perf_counter()
    hits = kb.search([s for _, s in sample], k=5, keep_bm25_top=keep_bm25_top)
    ms = (time.perf_counter() - start) / len(sample) * 1000
    found = {k: 0 for k in (1, 3, 5)}
    for (title, _), passages in zip(sample, hits, strict=True):
        titles = [p.title for p in passages]
        for k in found:
            found[k] += title in titles[:k]
    return {k: v / len(sample) for k, v in found.items()}, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="sentences to sample")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    kb = KnowledgeBase.default()
    sample = random.Random(args.seed).sample(list(_kb_sentences()), args.n)
    print(f"{len(sample)} sentences of the default knowledge base (seed {args.seed})\n")
    print(f"{'ranking':<40} {'recall@1':>8} {'recall@3':>8} {'recall@5':>8} {'ms/query':>8}")
    for name, keep in [("title links first (baseline, v2)", False), ("BM25 top hit first (default)", True)]:
        r, ms = recall(kb, sample, keep_bm25_top=keep)
        print(f"{name:<40} {r[1]:8.3f} {r[3]:8.3f} {r[5]:8.3f} {ms:8.2f}")


if __name__ == "__main__":
    main()
