"""How often the two refusal judges disagree on a run log's drafts.

Wang et al.'s verbatim prefix list (``refusal``) is the baseline; ``refusal-broad`` adds refusal
phrases in the opening. Every draft of every example whose dataset sets ``should_refuse`` (AdvBench,
benign, a user's JSONL) is labelled by both, and the disagreements are printed, so the broad judge's
extra refusals can be read and checked by hand.

    python benchmarks/refusal_judges.py --db redraft.db [--experiment ID] [--show 20]
"""

from __future__ import annotations

import argparse

from redraft.judges import refused, refused_broad
from redraft.store.sql import SQLStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL or SQLite file of the run log")
    parser.add_argument("--experiment", help="only this experiment id (or prefix); default: every run")
    parser.add_argument("--show", type=int, default=20, help="disagreements to print")
    args = parser.parse_args()

    url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    store = SQLStore(url, readonly=True)
    runs = store.resolve(args.experiment)[1] if args.experiment else store.runs()
    drafts = 0
    disagree: list[tuple[str, bool, str]] = []
    for run in runs:
        for example in store.examples(run.id):
            if "should_refuse" not in (example.labels or {}):
                continue
            for r in example.rounds:
                drafts += 1
                verbatim, broad = refused(r.draft), refused_broad(r.draft)
                if verbatim != broad:
                    disagree.append((example.key, broad, r.draft))
    print(f"{drafts} drafts with a should_refuse label; the judges disagree on {len(disagree)}")
    for key, broad, draft in disagree[: args.show]:
        print(f"  {key}: broad says {'refused' if broad else 'complied'}: {draft[:120]!r}")


if __name__ == "__main__":
    main()
