"""Index build time and bytes per token against raw pydivsufsort and infini-gram's
indexer, on the same corpus in the same run.

Corpus: the project's shared benchmark corpus, built by scripts kept beside the repository in
../shared/bench, not in it (114.8 M byte tokens of real English, 41,751 docs):

    bash ../shared/bench/fetch_sources.sh WORK "$(which pip)"
    python ../shared/bench/build_corpus.py WORK/src WORK/out
    python benchmarks/index_build.py WORK/out [--skip-infinigram] [--token-level-mb 20] [--repeat 3]

Each tool runs in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _infinigram import build_infinigram


def run(code: str) -> dict[str, Any]:
    """Run python code in a fresh subprocess and return the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_out", type=Path, help="the OUT directory of build_corpus.py")
    ap.add_argument("--skip-infinigram", action="store_true")
    ap.add_argument("--token-level-mb", type=float, default=20.0, help="corpus prefix for the token-level build")
    ap.add_argument("--repeat", type=int, default=3, help="turns of the baseline and byte-level builds (median)")
    args = ap.parse_args()
    corpus_bin, jsonl = args.bench_out / "corpus.bin", args.bench_out / "jsonl" / "corpus.jsonl"
    work = Path(tempfile.mkdtemp(prefix="redraft-bench-"))
    rows = []
    n = 0
    try:
        # The baseline and the two byte-level builds take turns, --repeat times, and each row is its
        # median: this machine's speed drifts by ±20% over minutes, and turns share the drift.
        sort_code = (
            "import json,time,numpy as np;from pydivsufsort import divsufsort\n"
            f"a=np.fromfile({str(corpus_bin)!r},dtype=np.uint8)\n"
            "t=time.perf_counter();sa=divsufsort(a);print(json.dumps({'s':time.perf_counter()-t,'n':int(a.size)}))"
        )
        jsonl_code = (
            "import json,time;from redraft.provenance import build_index\n"
            f"t=time.perf_counter();build_index([{str(jsonl)!r}],{str(work / 'redraft')!r},force=True)\n"
            "print(json.dumps({'s':time.perf_counter()-t}))"
        )
        same_code = (
            "import json,time,numpy as np;from redraft.provenance import build_from_token_ids\n"
            f"a=np.fromfile({str(corpus_bin)!r},dtype=np.uint8)\n"
            "t=time.perf_counter();cut=np.flatnonzero(a==255)\n"
            "docs=((a[s+1:e],{}) for s,e in zip(cut,list(cut[1:])+[a.size]))\n"
            f"build_from_token_ids(docs,{str(work / 'same')!r},vocab_size=255,name='bytes',force=True)\n"
            "print(json.dumps({'s':time.perf_counter()-t}))"
        )
        turns: dict[str, list[float]] = {"sort": [], "jsonl": [], "same": []}
        for _ in range(args.repeat):
            for key, code in (("sort", sort_code), ("jsonl", jsonl_code), ("same", same_code)):
                res = run(code)
                turns[key].append(res["s"])
                n = res.get("n", n)
        seconds = {k: statistics.median(v) for k, v in turns.items()}
        rows.append(("pydivsufsort 0.0.20, SA of corpus.bin only (baseline)", seconds["sort"], None, 5.0))
        rows.append(("redraft build_index (JSONL -> index, u8)", seconds["jsonl"], None, du(work / "redraft") / n))
        rows.append(
            ("redraft build_from_token_ids (the same array -> index)", seconds["same"], None, du(work / "same") / n)
        )
        if not args.skip_infinigram:
            start = time.perf_counter()
            build_infinigram(jsonl.parent, work / "ig")
            rows.append(
                ("infini-gram 2.6.0 indexer (u8, 2 cpus)", time.perf_counter() - start, None, du(work / "ig") / n)
            )
        # Token level: the embedded model's tokenizer on a prefix of the corpus.
        limit = int(args.token_level_mb * 1e6)
        sub = work / "sub.jsonl"
        with jsonl.open("rb") as src, sub.open("wb") as dst:
            size = 0
            for line in src:
                dst.write(line)
                size += len(line)
                if size >= limit:
                    break
        res = run(
            "import json,time;from redraft.provenance import build_index, load_tokenizer\n"
            "from redraft.agents.embedded import named_model_dir\n"
            "tok=load_tokenizer(str(named_model_dir('embedded')))\n"
            f"t=time.perf_counter();h=build_index([{str(sub)!r}],{str(work / 'tok')!r},tok)\n"
            "print(json.dumps({'s':time.perf_counter()-t,'n':h.n_tokens}))"
        )
        rows.append(
            (
                f"redraft build_index, SmolLM2 tokens ({args.token_level_mb:g} MB prefix, u16)",
                res["s"],
                None,
                du(work / "tok") / res["n"],
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][1]
    print(f"corpus: {n:,} byte tokens\n")
    print(f"{'tool':<62} {'seconds':>8} {'vs baseline':>12} {'bytes/token':>12}")
    for name, secs, _, bpt in rows:
        print(f"{name:<62} {secs:8.1f} {secs / base:11.2f}x {bpt:12.3f}")
    ours = rows[1][1]
    if not args.skip_infinigram:
        print(f"\nredraft vs infini-gram indexer: {rows[3][1] / ours:.2f}x faster")
    print(f"redraft (JSONL) vs raw pydivsufsort: {ours / base:.2f}x the time")
    print(f"redraft (same array) vs raw pydivsufsort: {rows[2][1] / base:.2f}x the time")


if __name__ == "__main__":
    main()
