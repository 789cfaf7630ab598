"""Exports of logged runs in TRL's dataset formats.

DPO rows follow https://huggingface.co/docs/trl/dataset_formats exactly: ``{"prompt", "chosen",
"rejected"}``, either as strings ("standard") or as ``{"role", "content"}`` message lists
("conversational", where TRL applies the chat template).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from redraft.store.models import Example
from redraft.store.sql import SQLStore

Format = Literal["standard", "conversational"]


def _pair(prompt: str, chosen: str, rejected: str, fmt: Format) -> dict[str, Any]:
    if fmt == "standard":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def _revision_pair(example: Example) -> tuple[str, str] | None:
    """(chosen, rejected) when the first draft failed a critic and the final revision passed all."""
    if example.outcome is None or example.outcome.status != "accepted" or len(example.rounds) < 2:
        return None
    first, last = example.rounds[0], example.rounds[-1]
    if not any(c.passed is False for c in first.critiques) or last.draft.strip() == first.draft.strip():
        return None
    return last.draft, first.draft


def dpo_pairs(store: SQLStore, run_id: str, *, fmt: Format = "conversational") -> Iterator[dict[str, Any]]:
    """Preference pairs (final revision ≻ first draft) from one run.

    Only examples whose first draft failed at least one critic and whose final revision passed
    every critic (status ``accepted``) give a pair.
    """
    run = store.run(run_id)
    for example in store.examples(run.id):
        pair = _revision_pair(example)
        if pair is not None:
            yield _pair(example.prompt, *pair, fmt)


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write rows as JSON lines atomically (temporary file, then rename); return the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
