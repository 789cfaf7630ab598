"""``redraft serve`` on a 10,000-example experiment: seconds per page, against one page that holds
every example (the baseline: what a view without pagination would do), in the same run.

The database is generated: 10,000 examples × 2 rounds × 2 critics with judge labels, in SQLite.
Each page is requested through the ASGI app (Starlette's test client, no network), 5 times; the
median is printed. The server computes an experiment's charts on its first open (they read every
example) and reuses them until the experiment grows; that first open is timed on its own.

    python benchmarks/view_pages.py [--examples 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from redraft.store.models import CritiqueRow, Example, Experiment, Judgement, Outcome, Round, Run
from redraft.store.sql import SQLStore


def generate(store: SQLStore, n: int) -> str:
    """An experiment of one run with ``n`` examples: first drafts bad on even keys, revisions good."""
    exp, run = uuid.uuid4().hex, uuid.uuid4().hex
    critics = [{"name": "self-harm", "higher_is_better": False}, {"name": "oracle", "higher_is_better": True}]
    with store.session() as s, s.begin():
        s.execute(insert(Experiment), [{"id": exp, "name": "bench", "spec": {}}])
        s.execute(
            insert(Run),
            [
                {
                    "id": run,
                    "model_id": "bench",
                    "config": {"max_rounds": 2},
                    "critics": critics,
                    "redraft_version": "bench",
                    "experiment_id": exp,
                    "cell": "cac/self-harm+oracle/r2",
                }
            ],
        )
        s.execute(
            insert(Example),
            [
                {
                    "id": i + 1,
                    "run_id": run,
                    "key": f"ex:{i}",
                    "prompt": f"Prompt number {i}?",
                    "source": ("a", "b")[i % 2],
                }
                for i in range(n)
            ],
        )
        rounds, critiques, judgements = [], [], []
        for i in range(n):
            for k in range(2):
                rid = 2 * i + k + 1
                good = k == 1 or i % 2 == 1
                rounds.append(
                    {
                        "id": rid,
                        "example_id": i + 1,
                        "index": k,
                        "draft": f"Draft {k} of {i}. " * 20,
                        "n_tokens": 80,
                        "finish_reason": "stop",
                        "gen_latency_s": 0.1,
                    }
                )
                judgements.append({"round_id": rid, "judge": "refusal", "good": good, "detail": ""})
                for name, passed in (("self-harm", i % 3 != 0), ("oracle", good)):
                    critiques.append(
                        {
                            "round_id": rid,
                            "critic": name,
                            "passed": passed,
                            "score": None,
                            "feedback": "ok",
                            "evidence": [],
                            "latency_s": 0.0,
                            "judge": "refusal",
                            "truth": good,
                            "correct": passed == good,
                        }
                    )
        s.execute(insert(Round), rounds)
        s.execute(insert(Judgement), judgements)
        s.execute(insert(CritiqueRow), critiques)
        s.execute(
            insert(Outcome),
            [{"example_id": i + 1, "status": "max_rounds", "rounds_used": 2, "final": "x"} for i in range(n)],
        )
    return exp


LOCAL = "http://127.0.0.1"
"""The app answers only loopback Host names (its allow-list), as a browser on this machine sends."""


def median_seconds(client: Any, url: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    args = parser.parse_args()
    from starlette.testclient import TestClient

    from redraft.view import create_app

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'view.db'}"
        store = SQLStore(url)
        start = time.perf_counter()
        exp = generate(store, args.examples)
        print(f"generated {args.examples} examples in {time.perf_counter() - start:.1f} s")
        paged = TestClient(create_app(url), base_url=LOCAL)
        whole = TestClient(create_app(url, per_page=args.examples), base_url=LOCAL)
        baseline = median_seconds(whole, f"/r/{exp[:8]}", repeat=1)
        print(f"{'page':<48} {'seconds':>8} {'vs one page of all':>19}")
        print(f"{'every example on one page (baseline)':<48} {baseline:>8.3f} {1.0:>18.1f}x")
        first_open = median_seconds(TestClient(create_app(url), base_url=LOCAL), f"/r/{exp[:8]}", repeat=1)
        label = "page 1, first open (charts computed, then cached)"
        print(f"{label:<48} {first_open:>8.3f} {baseline / first_open:>18.1f}x")
        pages = max(1, args.examples // 50)
        middle = max(1, pages // 2)
        for label, route in [
            ("page 1", f"/r/{exp[:8]}"),
            (f"page {middle}", f"/r/{exp[:8]}?page={middle}"),
            (f"page {pages} (last)", f"/r/{exp[:8]}?page={pages}"),
            ("filter change=improved, page 2", f"/r/{exp[:8]}?change=improved&page=2"),
            ("filter critic=self-harm verdict=wrong, page 3", f"/r/{exp[:8]}?critic=self-harm&verdict=wrong&page=3"),
            ("one example", f"/example/{max(1, args.examples // 2)}"),
            ("home", "/"),
        ]:
            t = median_seconds(paged, route)
            print(f"{label:<48} {t:>8.3f} {baseline / t:>18.1f}x")
        store.close()


if __name__ == "__main__":
    main()
