"""The factuality critic on long-form drafts, FActScore's use: multi-sentence biographies with a
known number of false claims. Prints the correlation of the critic's score with the true share of
supported claims, and its time per draft, for the shipped verifier and the lexical baseline.

    python benchmarks/factuality_longform.py [--drafts 100] [--seed 0]

Each draft is about one of the knowledge base's People articles: its first 4 to 6 sentences, of
which k (drawn uniformly from 0 to the number that can be altered) have one date, number or name
swapped for another, so exactly k claims are false. The prompt is "Tell me a bio of <title>.",
and the critic retrieves evidence for each claim itself, as in a run. The true share of
supported claims is (n − k) / n over the sentences the critic checks.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from redraft.analysis.metrics import bootstrap_ci, pearson
from redraft.critics import DraftContext
from redraft.critics.factuality import FactualityCritic, KnowledgeBase, LexicalVerifier
from redraft.critics.factuality.claims import split_claims
from redraft.critics.factuality.training_data import _NAME, swap
from redraft.critics.factuality.verifiers import default_verifier


def drafts(kb: KnowledgeBase, n: int, seed: int) -> list[tuple[str, str, float]]:
    """(prompt, draft, true supported share) for ``n`` People articles."""
    rng = random.Random(seed)
    first: dict[int, tuple[str, str]] = {}
    for p in kb.passages:
        if p.meta.get("topic") == "People" and p.doc not in first:
            first[p.doc] = (p.title, p.text)
    articles = sorted(first.values())
    rng.shuffle(articles)
    names = sorted({m.group(1) for _, text in articles for m in _NAME.finditer(text)})
    out = []
    for title, text in articles:
        sentences = split_claims(text)[:6]
        if len(sentences) < 4:
            continue
        swapped = [swap(s, names, rng) for s in sentences]
        alterable = [i for i, s in enumerate(swapped) if s is not None]
        k = rng.randint(0, len(alterable))
        wrong = set(rng.sample(alterable, k))
        body = [swapped[i] if i in wrong else s for i, s in enumerate(sentences)]
        draft = " ".join(s for s in body if s is not None)
        if len(split_claims(draft)) != len(sentences):  # a swap changed how the draft splits
            continue
        out.append((f"Tell me a bio of {title}.", draft, (len(sentences) - k) / len(sentences)))
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drafts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    kb = KnowledgeBase.default()
    data = drafts(kb, args.drafts, args.seed)
    claims = sum(len(split_claims(d)) for _, d, _ in data)
    truth = [t for _, _, t in data]
    print(f"{len(data)} biographies, {claims} claims, true supported share: mean {statistics.mean(truth):.2f}\n")
    print(f"{'verifier':<34} {'pearson r':>9} {'95% CI':>15} {'mean |err|':>10} {'s/draft':>8}")
    for name, verifier in [
        ("default (shipped)", default_verifier()),
        ("lexical overlap (baseline)", LexicalVerifier()),
    ]:
        critic = FactualityCritic(kb, verifier)
        items = [DraftContext(prompt=p, draft=d) for p, d, _ in data]
        critic.critique(items[:4])  # warm-up
        start = time.perf_counter()
        scores = [c.score if c.score is not None else float("nan") for c in critic.critique(items)]
        per_draft = (time.perf_counter() - start) / len(items)
        pairs = list(zip(scores, truth, strict=True))
        r = pearson(scores, truth)
        lo, hi = bootstrap_ci(lambda ps: pearson([s for s, _ in ps], [t for _, t in ps]), pairs)
        err = statistics.mean(abs(s - t) for s, t in pairs)
        print(f"{name:<34} {r:9.3f} {f'[{lo:.3f}, {hi:.3f}]':>15} {err:10.3f} {per_draft:8.3f}")


if __name__ == "__main__":
    main()
