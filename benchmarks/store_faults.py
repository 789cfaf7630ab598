"""Load and faults on the run log: concurrent writers on a fresh database, and SIGKILL + resume.

Three scenarios, each checked against a reference run of the same experiment in one process
(the model is deterministic: a reply depends only on the conversation, with a small delay per
call so processes overlap and kills land mid-run):

* ``workers``: N processes run the N shards of one experiment into one fresh database, all
  starting at once (so they also race to create the schema);
* ``independent``: N processes each run a whole experiment of their own into one fresh database;
* ``kills``: one experiment killed with SIGKILL at K random points (chosen by the number of
  rounds written), each followed by ``--resume`` style continuation, then finished.

Printed: crashes, rounds lost and rounds duplicated against the reference (goal 0, 0, 0), and
p50/p99 of one round's write (``SQLStore.record_round``: one transaction), with its ratio to the
baseline: one writer alone on the same kind of database, measured in the same run.

    python benchmarks/store_faults.py [--postgres URL] [--processes 8] [--kills 20]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from redraft.agents.testing import FunctionLLM, hashed_reply
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.models import Example, Round, Run
from redraft.store.sql import SQLStore

SPEC = {
    "name": "faults",
    "datasets": [{"name": "advbench", "limit": 16, "seed": 5}, {"name": "benign", "limit": 16, "seed": 5}],
    "critics": [["self-harm"], ["oracle"]],
    "modes": ["cac"],  # the mode its published figures ran
    "max_rounds": 3,
    "batch_size": 4,
}


# -- the worker process -----------------------------------------------------------------------------


def worker(url: str, experiment: str, shard: str, delay: float, start_file: str | None) -> None:
    """Run (or resume) shard ``i/n`` of ``experiment`` (``new`` creates one and prints its id)."""
    if start_file:  # every process opens the fresh database at the same moment
        while not Path(start_file).exists():
            time.sleep(0.001)
    times: list[float] = []
    original = SQLStore.record_round

    def timed(self: SQLStore, *args: Any, **kwargs: Any) -> None:
        t = time.perf_counter()
        original(self, *args, **kwargs)
        times.append(time.perf_counter() - t)

    SQLStore.record_round = timed  # type: ignore[method-assign]
    spec = ExperimentSpec.parse(SPEC)
    store = SQLStore(url)
    i, n = (int(x) for x in shard.split("/"))
    runner = ExperimentRunner(spec, store, FunctionLLM(hashed_reply, delay_s=delay), shard=(i, n))
    if experiment == "new":
        experiment = store.start_experiment(spec.name, spec.stored())
        print(json.dumps({"experiment": experiment}), flush=True)
    runner.run(experiment)
    print(json.dumps({"write_s": times}), flush=True)


# -- the driver -------------------------------------------------------------------------------------


def snapshot(url: str, experiment_id: str) -> list[tuple[Any, ...]]:
    store = SQLStore(url, readonly=True)
    with store.session() as s:
        query = (
            select(Run.cell, Example.key, Round.index, Round.draft)
            .join(Example, Example.run_id == Run.id)
            .join(Round, Round.example_id == Example.id)
            .where(Run.experiment_id == experiment_id)
        )
        rows = sorted(tuple(r) for r in s.execute(query))
    store.close()
    return rows


def compare(reference: list[tuple[Any, ...]], got: list[tuple[Any, ...]]) -> tuple[int, int]:
    """(rounds lost, rounds duplicated or different) against the reference."""
    ref, have = Counter(reference), Counter(got)
    lost = sum((ref - have).values())
    extra = sum((have - ref).values())
    return lost, extra


def fresh_db(kind: str, postgres: str | None, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.db'}"
    assert postgres is not None
    name = f"redraft_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(postgres).set(database=name).render_as_string(hide_password=False)


def spawn(url: str, experiment: str, shard: str, delay: float, start_file: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--worker", url, experiment, shard, str(delay), start_file or ""]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen[str]]) -> tuple[int, list[float]]:
    crashes, times = 0, []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            crashes += 1
            print(f"    worker failed (rc {p.returncode}): {err.strip().splitlines()[-1:]}")
        for line in out.splitlines():
            data = json.loads(line)
            times += data.get("write_s", [])
    return crashes, times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else float("nan")


def start_together(
    url: str, experiments: list[str], shards: list[str], delay: float, tmp: Path
) -> tuple[int, list[float]]:
    go = tmp / f"go-{uuid.uuid4().hex[:6]}"
    procs = [spawn(url, e, s, delay, str(go)) for e, s in zip(experiments, shards, strict=True)]
    time.sleep(0.5)  # let the interpreters import; the file releases them at one instant
    go.touch()
    return finish(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="an admin URL of a PostgreSQL server (databases are created on it)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.01, help="seconds per model call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    n = args.processes
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ref_url = f"sqlite:///{tmp / 'reference.db'}"
        proc = spawn(ref_url, "new", "0/1", 0.0)
        out, _ = proc.communicate()
        ref_exp = json.loads(out.splitlines()[0])["experiment"]
        reference = snapshot(ref_url, ref_exp)
        print(f"reference: {len(reference)} rounds in one process")
        for kind in ["sqlite", *(["postgres"] if args.postgres else [])]:
            print(f"{kind}:")
            # The baseline: one writer alone on a fresh database of this kind.
            _, alone = finish([spawn(fresh_db(kind, args.postgres, tmp), "new", "0/1", args.delay)])
            base50, base99 = pct(alone, 50), pct(alone, 99)
            print(f"  1 writer alone (baseline):     round write p50 {base50:.1f} ms, p99 {base99:.1f} ms")
            # workers: the shards of one experiment, on a fresh database, starting at once.
            url = fresh_db(kind, args.postgres, tmp)
            store = SQLStore(url)  # the experiment row must exist before its shards start
            exp = store.start_experiment("faults", ExperimentSpec.parse(SPEC).stored())
            store.close()
            crashes, times = start_together(url, [exp] * n, [f"{k}/{n}" for k in range(n)], args.delay, tmp)
            lost, extra = compare(reference, snapshot(url, exp))
            print(
                f"  {n} workers, one experiment:    crashes {crashes}, rounds lost {lost}, duplicated {extra}; "
                f"round write p50 {pct(times, 50):.1f} ms ({pct(times, 50) / base50:.1f}x), "
                f"p99 {pct(times, 99):.1f} ms ({pct(times, 99) / base99:.1f}x)"
            )
            # independent: whole experiments of their own, on one fresh database, starting at once.
            url = fresh_db(kind, args.postgres, tmp)
            crashes, times = start_together(url, ["new"] * n, ["0/1"] * n, args.delay, tmp)
            store = SQLStore(url, readonly=True)
            exps = [store.experiment(r.experiment_id).id for r in store.runs() if r.experiment_id is not None]
            store.close()
            losses = [compare(reference, snapshot(url, e)) for e in sorted(set(exps))]
            print(
                f"  {n} independent experiments:   crashes {crashes}, experiments {len(set(exps))}/{n}, "
                f"rounds lost {sum(x for x, _ in losses)}, duplicated {sum(y for _, y in losses)}; "
                f"round write p50 {pct(times, 50):.1f} ms ({pct(times, 50) / base50:.1f}x), "
                f"p99 {pct(times, 99):.1f} ms ({pct(times, 99) / base99:.1f}x)"
            )
            # kills: SIGKILL at random points, each followed by a resume, then finish.
            url = fresh_db(kind, args.postgres, tmp)
            store = SQLStore(url)
            exp = store.start_experiment("faults", ExperimentSpec.parse(SPEC).stored())
            landed = 0
            for _ in range(args.kills):
                target = store.progress([r.id for r in store.experiment(exp).runs])[1] + rng.randint(1, 8)
                p = spawn(url, exp, "0/1", args.delay)
                while p.poll() is None:
                    if store.progress([r.id for r in store.experiment(exp).runs])[1] >= target:
                        p.send_signal(signal.SIGKILL)
                        landed += 1
                        break
                    time.sleep(0.002)
                p.communicate()
            crashes, _ = finish([spawn(url, exp, "0/1", 0.0)])
            lost, extra = compare(reference, snapshot(url, exp))
            print(
                f"  {args.kills} SIGKILLs + resume:      kills landed mid-run {landed}, "
                f"final resume crashes {crashes}, rounds lost {lost}, duplicated {extra}"
            )
            store.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6] or None)
    else:
        main()
