"""Exports of logged runs in TRL's dataset formats: DPO pairs (two recipes) and SFT rows.

DPO rows follow https://huggingface.co/docs/trl/dataset_formats: ``{"prompt", "chosen",
"rejected"}``, either as strings ("standard") or as ``{"role", "content"}`` message lists
("conversational", where TRL applies the chat template). SFT rows are prompt-completion rows in
the same two styles. Every row keeps its provenance in an extra ``redraft`` column (run,
example, rounds, recipe), which TRL's trainers ignore.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from redraft._atomic import atomic_dir, atomic_file
from redraft._text import same_text
from redraft.errors import InputError
from redraft.store.base import Candidate, truth_of
from redraft.store.models import Example, Round, Run
from redraft.store.sql import SQLStore

Format = Literal["standard", "conversational"]
Recipe = Literal["revision", "flame"]


def _pair(prompt: str, chosen: str, rejected: str, fmt: Format) -> dict[str, Any]:
    if fmt == "standard":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def _judged(example: Example, r: Round) -> bool | None:
    """The judge's label of a round, unless the example's judge is nominal (no ground truth)."""
    truth = truth_of(r.judgements, example.labels)
    return None if truth is None else truth.good


def _verdict(r: Round) -> str | None:
    """The recorded verdict of what a revision did (``fixed``, ``evaded``, ...), if any."""
    verdict = r.correction.get("verdict") if isinstance(r.correction, dict) else None
    return verdict if isinstance(verdict, str) else None


def _revision_pair(example: Example, judge_only: bool) -> tuple[Round, Round, str] | None:
    """(chosen, rejected, confirmed_by): the final revision over the first draft.

    With judge labels, only a confirmed flip (first draft bad, final answer good) counts, as in
    CLAIR: the pair must be a real correction, not a critic's opinion. Without labels (a plain
    ``redraft run``), the critics stand in: the first draft failed one and the final revision
    passed all (status ``accepted``), unless ``judge_only``; and where the loop could check the
    meaning (critics that name claims), the final revision must be a true fix (verdict
    ``fixed``): a paraphrase that still asserts the flagged claim passes the critics, and as a
    "chosen" side would teach evasion.
    """
    if len(example.rounds) < 2:
        return None
    first, last = example.rounds[0], example.rounds[-1]
    if same_text(last.draft, first.draft):
        return None
    before, after = _judged(example, first), _judged(example, last)
    if before is not None and after is not None:
        return (last, first, "judge") if before is False and after is True else None
    if judge_only or example.outcome is None or example.outcome.status != "accepted":
        return None
    if not any(c.passed is False for c in first.critiques):
        return None
    verdict = _verdict(last)
    if verdict is not None:
        return (last, first, "evasion-check") if verdict == "fixed" else None
    # Nothing could judge the meaning (a self-check's flag, or a run logged before verdicts): the
    # critics alone, and the row says so.
    return last, first, "critics"


def _evasion_pairs(example: Example, n_critics: int) -> Iterator[tuple[str, str, int]]:
    """(chosen text, rejected text, round) pairs where a true fix beats an evasion of the same
    draft: a ``best_of`` candidate every critic passed that still asserts a flagged claim. FLAME
    pairs a fact over a hallucination; this pairs a correction over a laundered claim."""
    for r in example.rounds:
        if _verdict(r) != "fixed" or not isinstance(r.correction, dict):
            continue
        for cand in _candidates(r.correction.get("candidates")):
            if cand.asserts_flagged and cand.critics_passed == n_critics:
                yield r.draft, cand.text, r.index


def _candidates(stored: object) -> list[Candidate]:
    """The ``best_of`` candidates of a stored correction record, typed; a malformed entry (a
    database edited by hand, a record from another version) is skipped, never exported."""
    out = []
    for raw in stored if isinstance(stored, list) else []:
        try:
            out.append(Candidate.model_validate(raw))
        except ValidationError:
            continue
    return out


Directions = dict[str, bool]
"""Critic name → ``higher_is_better``, as recorded with a run."""


def _reward(example: Example, r: Round, source: str, higher_is_better: Directions) -> float | None:
    """A draft's reward, larger is better: the judge's label (1/0; none from a nominal judge), or
    a critic's score turned the right way up (negated for a critic whose lower scores are better,
    e.g. BCI)."""
    if source == "judge":
        good = _judged(example, r)
        return None if good is None else float(good)
    score = next((c.score for c in r.critiques if c.critic == source), None)
    if score is None:
        return None
    if source not in higher_is_better:
        raise InputError(
            f"the run does not record which way critic {source!r}'s score points (it was logged by an older "
            "redraft, or the critic is not in the run); rank by --reward judge, or re-run with this redraft"
        )
    return score if higher_is_better[source] else -score


@dataclass(frozen=True, slots=True)
class FlameFilter:
    """FLAME's pair selection (Lin et al. 2024, §3.1), applied to the drafts of one example.

    Attributes:
        reward: what ranks the drafts: ``judge`` (its good/bad label) or a critic name whose
            score is the reward (e.g. ``factuality``, the share of supported claims, or ``bci``,
            whose lower scores are better: each critic's recorded direction is applied).
        guard: a second reward (``judge`` or a critic name) that must not differ by more than
            ``max_gap`` between chosen and rejected. FLAME drops factuality pairs whose
            instruction-following reward gap exceeds 0.5, so the pair teaches facts, not style.
        max_gap: the largest allowed guard gap.
    """

    reward: str = "judge"
    guard: str | None = None
    max_gap: float = 0.5

    def pair(self, example: Example, higher_is_better: Directions | None = None) -> tuple[Round, Round, str] | None:
        """The (chosen, rejected, reward name) of ``example``, or None when FLAME drops it."""
        ways = higher_is_better or {}
        scored = [(r, _reward(example, r, self.reward, ways)) for r in example.rounds]
        known = [(r, s) for r, s in scored if s is not None]
        if len(known) < 2:
            return None
        best = max(known, key=lambda x: (x[1], x[0].index))  # ties: the later (revised) draft
        worst = min(known, key=lambda x: (x[1], x[0].index))
        if best[1] == worst[1] or same_text(best[0].draft, worst[0].draft):
            return None  # a tie teaches nothing (FLAME drops ties)
        if self.guard is not None:
            g_best, g_worst = _reward(example, best[0], self.guard, ways), _reward(example, worst[0], self.guard, ways)
            if g_best is None or g_worst is None or abs(g_best - g_worst) > self.max_gap:
                return None
        return best[0], worst[0], self.reward


def _examples(store: SQLStore, ident: str) -> Iterator[tuple[Run, Example]]:
    """Examples of a run, or of every run of an experiment (an id or unique prefix of either)."""
    for run in store.resolve(ident)[1]:
        for example in store.examples(run.id):
            yield run, example


class EmptyExportError(InputError):
    """No example met an export's conditions: an empty file would only fail later, in training."""


def _nonempty(rows: Iterable[dict[str, Any]], examples: list[int], why: str) -> Iterator[dict[str, Any]]:
    """Pass ``rows`` through; raise :class:`EmptyExportError` naming ``why`` if there were none.
    ``examples`` holds one counter, filled while the rows are produced."""
    n = 0
    for row in rows:
        n += 1
        yield row
    if n == 0:
        if examples[0] == 0:
            raise EmptyExportError("nothing to export: the run or experiment has no logged examples yet")
        raise EmptyExportError(f"nothing to export: none of the {examples[0]} examples {why}")


def _dedupe(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for row in rows:
        content = {k: v for k, v in row.items() if k != "redraft"}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            yield row


def dpo_pairs(
    store: SQLStore,
    ident: str,
    *,
    fmt: Format = "conversational",
    recipe: Recipe = "revision",
    judge_only: bool = False,
    flame: FlameFilter | None = None,
) -> Iterator[dict[str, Any]]:
    """Preference pairs from a run or an experiment, deduplicated, with provenance.

    Recipes:
        ``revision``: the final revision ≻ the first draft, only where the judge confirms the
        flip (or, for unlabelled runs, the critics do and the evasion check confirms the meaning
        changed; ``judge_only`` drops those); plus, from ``best_of`` runs, each true fix ≻ a
        candidate that passed every critic but still asserts the flagged claim (an evasion).
        ``flame``: the best ≻ worst draft of an example by ``flame.reward``, ties dropped, and
        dropped when ``flame.guard`` differs by more than ``flame.max_gap``.
    """
    if recipe not in ("revision", "flame"):
        raise InputError(f"unknown recipe {recipe!r}; known recipes: revision, flame")
    rule = flame or FlameFilter()
    seen = [0]
    if recipe == "flame":
        why = (
            f"has two drafts with different {rule.reward} rewards (FLAME drops ties"
            + (f", and pairs whose {rule.guard} gap exceeds {rule.max_gap}" if rule.guard else "")
            + ")"
        )
    else:
        why = (
            "has a final revision that fixes the first draft as a judge confirms it (first bad, final good)"
            + ("" if judge_only else ", or, without judge labels, as the critics do (first failed, final accepted)")
            + "; try --recipe flame, or a run with more rounds"
        )

    def rows() -> Iterator[dict[str, Any]]:
        for run, example in _examples(store, ident):
            seen[0] += 1
            if recipe == "revision" and not judge_only:
                for chosen_text, rejected_text, index in _evasion_pairs(example, len(run.critic_names)):
                    row = _pair(example.prompt, chosen_text, rejected_text, fmt)
                    row["redraft"] = {
                        "run_id": run.id,
                        "example": example.key,
                        "source": example.source,
                        "chosen_round": index,
                        "rejected_round": index,
                        "recipe": recipe,
                        "confirmed_by": "evasion-check",
                        "rejected_is": "evasion",
                    }
                    yield row
            found = _revision_pair(example, judge_only) if recipe == "revision" else rule.pair(example, run.directions)
            if found is None:
                continue
            chosen, rejected, by = found
            row = _pair(example.prompt, chosen.draft, rejected.draft, fmt)
            row["redraft"] = {
                "run_id": run.id,
                "example": example.key,
                "source": example.source,
                "chosen_round": chosen.index,
                "rejected_round": rejected.index,
                "recipe": recipe,
                "confirmed_by": by,
            }
            yield row

    return _nonempty(_dedupe(rows()), seen, why)


def sft_rows(store: SQLStore, ident: str, *, fmt: Format = "conversational") -> Iterator[dict[str, Any]]:
    """Prompt-completion rows of final answers that are good: judged good when the example has a
    judge, otherwise accepted by every critic. Deduplicated, with provenance."""

    seen = [0]

    def rows() -> Iterator[dict[str, Any]]:
        for run, example in _examples(store, ident):
            seen[0] += 1
            if not example.rounds or example.outcome is None:
                continue
            last = example.rounds[-1]
            good = _judged(example, last)
            if good is False or (good is None and example.outcome.status != "accepted"):
                continue
            if fmt == "standard":
                row: dict[str, Any] = {"prompt": example.prompt, "completion": last.draft}
            else:
                row = {
                    "prompt": [{"role": "user", "content": example.prompt}],
                    "completion": [{"role": "assistant", "content": last.draft}],
                }
            row["redraft"] = {
                "run_id": run.id,
                "example": example.key,
                "source": example.source,
                "round": last.index,
                "confirmed_by": "judge" if good is not None else "critics",
            }
            yield row

    why = "has a finished final answer that its judge labels good (or, unjudged, that every critic accepted)"
    return _nonempty(_dedupe(rows()), seen, why)


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write rows as JSON lines atomically (temporary file, then rename); return the row count."""
    n = 0
    with atomic_file(Path(path)) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def save_to_disk(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write rows with ``datasets.Dataset.save_to_disk`` (built beside ``path``, then renamed,
    so an interrupted export leaves no half-written dataset); return the row count."""
    from redraft._extras import require

    datasets = require("datasets", "train")
    path = Path(path)
    if path.exists():
        raise InputError(f"{path} already exists; remove it or choose another output directory")
    data = list(rows)
    if not data:
        raise EmptyExportError("nothing to export: no example met the recipe's conditions")
    with atomic_dir(path) as tmp:
        datasets.Dataset.from_list(data).save_to_disk(str(tmp))
    return len(data)
