"""The one rule that names what a revision did to a flagged draft (fixed / evaded / unchanged /
broken), and the text-identity rule it rests on. Reports, the view and the export read the
verdict the loop recorded; none of them re-derives it."""

from __future__ import annotations

from collections.abc import Sequence

from redraft.store.base import CorrectionVerdict


def same_text(a: str, b: str) -> bool:
    """Whether two drafts are the same text once whitespace is normalized.

    Example:
        >>> same_text("Paris.\\n", "  Paris. "), same_text("Paris.", "paris.")
        (True, False)
    """
    return " ".join(a.split()) == " ".join(b.split())


def classify(
    *,
    same: bool,
    asserted: Sequence[bool],
    passes_now: bool,
    before_good: bool | None = None,
    after_good: bool | None = None,
) -> CorrectionVerdict | None:
    """What a revision did to the findings of one critic (or of all critics together).

    Args:
        same: the revision repeats the draft (:func:`same_text`).
        asserted: for each flagged claim, whether the revision still asserts it (the evasion
            check); empty for critics that name no claim (a self-check).
        passes_now: every critic concerned passes the revision.
        before_good / after_good: the judge's labels of the draft and of the revision, when the
            example has a judge that grades them.

    The judge decides ``broken`` (good draft, bad revision), and ``fixed`` for critics that name
    no claim. For critics that name claims, the meaning decides: a revision that still asserts a
    flagged claim is never ``fixed``, whatever the critic now says.

    Example:
        >>> classify(same=False, asserted=[True], passes_now=True)  # a paraphrase the detector misses
        'evaded'
        >>> classify(same=False, asserted=[False], passes_now=False)
        'fixed'
        >>> classify(same=False, asserted=[], passes_now=True, before_good=True, after_good=False)
        'broken'
        >>> classify(same=False, asserted=[], passes_now=True) is None  # a self-check's word alone
        True
    """
    if before_good is True and after_good is False:
        return "broken"
    if same:
        return "unchanged"
    if asserted:
        if not any(asserted):
            return "fixed"
        return "evaded" if passes_now else "unchanged"
    if before_good is False and after_good is not None:
        if after_good:
            return "fixed"
        return "evaded" if passes_now else "unchanged"
    return None
