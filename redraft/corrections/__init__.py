"""Corrections: how a revision is asked for and what it did.

* :mod:`~redraft.corrections.strategies`: the revise strategies, one class each, in one registry
  (``CorrectionConfig.mode``, ``--mode``, the recorded label and the benchmark read it);
* :mod:`~redraft.corrections.config`: :class:`CorrectionConfig`, the one schema of the loop;
* :mod:`~redraft.corrections.verdicts`: the verdict rule (fixed / abstained / leaked / evaded /
  unchanged / broken) and the judging of revisions against every claim flagged so far;
* :mod:`~redraft.corrections.scaffolding`: whether a revision leaks the loop's own wording;
* :mod:`~redraft.corrections.best_of`: which of N sampled revisions is kept.

The evasion check these rest on (does a text still assert a claim?) is
:mod:`redraft.critics.evasion`, one layer down: the BCI critic asks it too, whether a draft
asserts the corpus claim it quotes.

The face is lazy: the command line reads the registry and the config without loading the
verifier the verdicts use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft.corrections.config import CorrectionConfig, ProvDecodeConfig, ReviseMode
    from redraft.corrections.scaffolding import scaffolding_leak
    from redraft.corrections.strategies import (
        DEFAULT_STRATEGY,
        STRATEGIES,
        RevisionAsk,
        Strategy,
        strategy,
        strip_wrappers,
    )
    from redraft.corrections.verdicts import DECLINING_FIXES, RevisionJob, claim_lines, classify, judge_revisions

__all__ = [
    "DECLINING_FIXES",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "CorrectionConfig",
    "ProvDecodeConfig",
    "ReviseMode",
    "RevisionAsk",
    "RevisionJob",
    "Strategy",
    "claim_lines",
    "classify",
    "judge_revisions",
    "scaffolding_leak",
    "strategy",
    "strip_wrappers",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        **dict.fromkeys(("CorrectionConfig", "ProvDecodeConfig", "ReviseMode"), "redraft.corrections.config"),
        "scaffolding_leak": "redraft.corrections.scaffolding",
        **dict.fromkeys(
            ("DEFAULT_STRATEGY", "STRATEGIES", "RevisionAsk", "Strategy", "strategy", "strip_wrappers"),
            "redraft.corrections.strategies",
        ),
        **dict.fromkeys(
            ("DECLINING_FIXES", "RevisionJob", "claim_lines", "classify", "judge_revisions"),
            "redraft.corrections.verdicts",
        ),
    },
)
