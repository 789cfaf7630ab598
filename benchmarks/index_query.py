"""Longest-match and maximal-span query speed against infini-gram's engine and a straightforward
numpy binary search, on the same corpus and responses in the same run.

    python benchmarks/index_query.py WORK/out [--device cpu|cuda] [--index DIR] [--infinigram DIR]

WORK/out comes from the shared benchmark corpus's scripts (../shared/bench, beside the repository,
not in it: build_corpus.py + make_responses.py): 100 "uniform" responses of
500 bytes (real passages with 10% of bytes mutated) are the primary workload. Missing indexes are
built (redraft: ~30 s; infini-gram: ~50 s) next to the corpus. Every method's longest-match lengths
are checked equal before any time is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from _infinigram import build_infinigram

from redraft.provenance import ByteTokenizer, SuffixIndex, build_index
from redraft.provenance.bci import find_spans
from redraft.provenance.format import unpack_bits

CHUNK = 16
T = TypeVar("T")


def numpy_longest(tokens: np.ndarray, sa: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """The straightforward baseline: a batched numpy binary search of every suffix of the response
    (no LCP reuse, no prefix table), then the LCP with the two neighbouring suffixes."""
    n, length = sa.size, resp.size
    start = np.arange(length)
    rem = length - start
    padded = np.concatenate([resp.astype(np.int32), np.full(CHUNK, -2, np.int32)])

    def lcp_and_less(suffix: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = np.zeros(idx.size, dtype=np.int64)
        less = np.zeros(idx.size, dtype=bool)
        todo = np.arange(idx.size)
        while todo.size:
            off = j[todo, None] + np.arange(CHUNK)
            s = tokens[np.minimum(suffix[todo, None] + off, tokens.size - 1)].astype(np.int32)
            p = padded[np.minimum(start[idx[todo], None] + off, padded.size - 1)]
            stop = (s != p) | (off >= rem[idx[todo], None])
            hit = stop.any(1)
            at = stop.argmax(1)
            rows = np.arange(todo.size)
            j[todo] = np.where(hit, j[todo] + at, j[todo] + CHUNK)
            less[todo] = (s[rows, at] < p[rows, at]) & (j[todo] < rem[idx[todo]])
            todo = todo[~hit]
        return np.minimum(j, rem[idx]), less

    lo, hi = np.zeros(length, np.int64), np.full(length, n, np.int64)
    while (act := np.flatnonzero(lo < hi)).size:
        mid = (lo[act] + hi[act]) // 2
        _, less = lcp_and_less(sa[mid].astype(np.int64), act)
        lo[act] = np.where(less, mid + 1, lo[act])
        hi[act] = np.where(less, hi[act], mid)
    best = np.zeros(length, np.int64)
    for r in (lo - 1, lo):
        ok = (r >= 0) & (r < n)
        idx = np.flatnonzero(ok)
        lcp, _ = lcp_and_less(sa[r[idx]].astype(np.int64), idx)
        best[idx] = np.maximum(best[idx], lcp)
    return best


def _count(engine: Any, ids: list[int]) -> int:
    """infini-gram's count of ``ids`` (its reply is a dict with "count", or "error")."""
    reply: dict[str, Any] = engine.count(input_ids=ids)
    if "error" in reply:
        raise RuntimeError(f"infini-gram: {reply['error']}")
    return int(reply["count"])


def timed(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """The median wall time of ``repeat`` calls, and the last call's result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_out", type=Path)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--index", type=Path, help="redraft index dir (default: BENCH_OUT/redraft-index)")
    ap.add_argument("--infinigram", type=Path, help="infini-gram index dir (default: BENCH_OUT/infinigram-index)")
    ap.add_argument("--skip-infinigram", action="store_true")
    ap.add_argument("--responses", type=int, default=100)
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA benchmark skipped: no CUDA device (torch.cuda.is_available() is False)")
        return
    jsonl = args.bench_out / "jsonl" / "corpus.jsonl"
    index_dir = args.index or args.bench_out / "redraft-index"
    if not (index_dir / "header.json").is_file():
        build_index([jsonl], index_dir, force=True)
    index = SuffixIndex.load(index_dir, device=args.device)
    # The torch search (what CUDA runs) on the same device, for the compiled kernel's gain on the CPU.
    torch_index = SuffixIndex.load(index_dir, device=args.device, compiled=False, verify=False)
    start = time.perf_counter()
    key_bytes = sum(k.numel() * 8 for shard in index.shards for k in shard.levels.keys)
    keys_s = time.perf_counter() - start  # one-time: the first query on a loaded index builds them
    data = json.loads((args.bench_out / "responses.jsonl").read_text())
    workloads = {k: [list(bytes.fromhex(r["hex"])) for r in data[k][: args.responses]] for k in ("uniform", "burst")}
    cuda = args.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    results: dict[str, dict[str, float]] = {}
    reference: dict[str, list[list[int]]] = {}
    for name, resps in workloads.items():
        nr = len(resps)
        r: dict[str, float] = {}

        def lengths_only(resps: list[list[int]] = resps) -> torch.Tensor:
            buf, s, n = index._queries(resps)
            out = index._longest(buf, s, n)
            sync()
            return out

        t, best = timed(lengths_only)
        r["redraft longest_match lengths, batched"] = t / nr * 1000
        flat = best.cpu().tolist()
        reference[name] = [flat[i * 500 : (i + 1) * 500] for i in range(nr)]

        def with_counts(resps: list[list[int]] = resps) -> None:
            index.longest_match(resps)
            sync()

        def one_at_a_time(resps: list[list[int]] = resps) -> None:
            for x in resps[:20]:
                index._longest(*index._queries([x]))
            sync()

        def spans(resps: list[list[int]] = resps) -> None:
            index.maximal_spans(resps, max_docs=10)
            sync()

        texts = [bytes(x).decode("utf-8", "replace") for x in resps[:20]]

        def critic(texts: list[str] = texts) -> None:
            for text in texts:  # what the BCI critic runs on a draft inside graph.invoke
                find_spans(index, ByteTokenizer(), [text])
            sync()

        def torch_lengths(resps: list[list[int]] = resps) -> None:
            torch_index._longest(*torch_index._queries(resps))
            sync()

        def torch_one_at_a_time(resps: list[list[int]] = resps) -> None:
            for x in resps[:20]:
                torch_index._longest(*torch_index._queries([x]))
            sync()

        if not cuda:
            r["  the same, torch search (compiled=False), batched"] = timed(torch_lengths)[0] / nr * 1000
        r["redraft longest_match + counts + ranges, batched"] = timed(with_counts)[0] / nr * 1000
        r["redraft longest_match lengths, one response at a time"] = timed(one_at_a_time)[0] / 20 * 1000
        if not cuda:
            r["  the same, torch search (compiled=False), one at a time"] = timed(torch_one_at_a_time)[0] / 20 * 1000
        r["redraft maximal_spans + BCI + attribution (10 docs), batched"] = timed(spans)[0] / nr * 1000
        r["redraft find_spans (the BCI critic's search), one draft per call"] = timed(critic)[0] / 20 * 1000

        # numpy baseline over the same (unpacked) suffix array.
        [shard] = index.shards
        tokens = np.fromfile(index_dir / shard.info.dir / "tokens.bin", dtype=np.uint8)
        words = np.fromfile(index_dir / shard.info.dir / "sa.bin", dtype="<u4")
        sa = unpack_bits(words, shard.bits, shard.n).astype(np.int32)
        sample = resps[:20]

        def baseline(
            tokens: np.ndarray = tokens, sa: np.ndarray = sa, sample: list[list[int]] = sample
        ) -> list[np.ndarray]:
            return [numpy_longest(tokens, sa, np.array(x, dtype=np.uint8)) for x in sample]

        t, outs = timed(baseline, repeat=1)
        for got, want in zip(outs, reference[name][:20], strict=True):
            assert got.tolist() == want, "numpy baseline disagrees with redraft"
        r["numpy batched binary search (baseline)"] = t / len(sample) * 1000
        results[name] = r

    if not args.skip_infinigram:
        ig_dir = args.infinigram or args.bench_out / "infinigram-index"
        if not (ig_dir / "tokenized.0").exists():
            build_infinigram(jsonl.parent, ig_dir)
        from infini_gram.engine import InfiniGramEngine

        default = InfiniGramEngine(index_dir=str(ig_dir), eos_token_id=254, vocab_size=255, token_dtype="u8")
        flat_engine = InfiniGramEngine(
            index_dir=str(ig_dir),
            eos_token_id=254,
            vocab_size=255,
            token_dtype="u8",
            ds_prefetch_depth=0,
            sa_prefetch_depth=0,
            od_prefetch_depth=0,
        )
        for name, resps in workloads.items():
            sample = resps[:20]

            def creativity(sample: list[list[int]] = sample) -> None:
                for x in sample:
                    default.creativity(input_ids=x)

            t, _ = timed(creativity, repeat=1)
            results[name]["infini-gram creativity(), default engine"] = t / len(sample) * 1000

            def per_extension(sample: list[list[int]] = sample) -> list[list[int]]:
                out: list[list[int]] = []
                for x in sample:
                    lengths: list[int] = []
                    for i in range(len(x)):
                        k = 0
                        while i + k < len(x) and _count(flat_engine, x[i : i + k + 1]) > 0:
                            k += 1
                        lengths.append(k)
                    out.append(lengths)
                return out

            t, counted = timed(per_extension, repeat=1)
            for lengths_ig, want in zip(counted, reference[name][:20], strict=True):
                assert lengths_ig == want, "infini-gram counts disagree with redraft"
            results[name]["infini-gram count() per extension, prefetch 0"] = t / len(sample) * 1000

    print(f"device={args.device}  corpus={index.header.n_tokens:,} byte tokens  responses of 500 bytes")
    print(f"sampled keys, built by the first query on a loaded index: {keys_s:.2f} s, {key_bytes / 1e6:.1f} MB\n")
    for name, r in results.items():
        base = r["numpy batched binary search (baseline)"]
        print(f"[{name}]  ms per response; speed-up vs numpy baseline")
        for k, v in r.items():
            print(f"  {k:<64} {v:9.2f} ms  {base / v:6.2f}x")
        if "infini-gram creativity(), default engine" in r:
            best_ig = min(v for k, v in r.items() if k.startswith("infini-gram"))
            ours = r["redraft longest_match lengths, batched"]
            print(f"  redraft vs best infini-gram configuration: {best_ig / ours:.1f}x faster")
        print()


if __name__ == "__main__":
    main()
