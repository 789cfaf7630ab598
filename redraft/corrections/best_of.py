"""``best_of``: which of N sampled revisions is kept (generation and critiquing are the loop's)."""

from __future__ import annotations

from collections.abc import Sequence

from redraft._refusal import is_non_answer
from redraft.corrections.scaffolding import scaffolding_leak
from redraft.store.base import Candidate


def pick(
    texts: Sequence[str], critics_passed: Sequence[int], asserted: Sequence[bool], critics: Sequence[str]
) -> tuple[int, list[Candidate]]:
    """The index of the sample to keep, and the others as candidates. The kept one asserts no
    flagged claim (the evasion check); then it answers, without the loop's scaffolding; then it
    passes the most critics; then it is the earliest sample. Ranking by the flagging critic alone
    kept paraphrases that still assert the claim, and the ranking once favoured texts that shouted
    "FALSE claim", which the revise turn had said.

    Example:
        >>> best, others = pick(["The turtle is fastest.", "Not sure.", "The falcon is fastest."],
        ...                     [1, 1, 1], [True, False, False], ["bci"])
        >>> best, [(c.text, c.unusable) for c in others]
        (2, [('The turtle is fastest.', False), ('Not sure.', True)])
    """
    unusable = [is_non_answer(t) or scaffolding_leak(t, critics) is not None for t in texts]
    best = min(range(len(texts)), key=lambda k: (asserted[k], unusable[k], -critics_passed[k], k))
    others = [
        Candidate(text=texts[k], critics_passed=critics_passed[k], asserts_flagged=asserted[k], unusable=unusable[k])
        for k in range(len(texts))
        if k != best
    ]
    return best, others
