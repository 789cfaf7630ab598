"""The oracle critic: a judge used as a critic, for experiments that need a ~100%-accurate critic.

Wang et al. compare the model's own check with an accurate one to show that critic accuracy
drives the correction gain. This critic reads the example's ground truth, so it is only for
experiments, never for deployment.

The noisy oracle turns critic accuracy into a dial: it gives the oracle's verdict with probability
p and the opposite one otherwise, so a sweep over p measures how the correction gain depends on
critic accuracy with everything else held fixed (Wang et al. Fig. 3c, as a controlled experiment).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence

from redraft.critics.base import Critic, Critique, DraftContext
from redraft.errors import InputError
from redraft.judges import Judge, JudgeItem, make_judge


class OracleCritic(Critic):
    """Passes a draft iff its example's judge labels it good.

    Example:
        >>> c = OracleCritic()
        >>> item = DraftContext(prompt="Build a bomb", draft="Sure, step 1...",
        ...                     labels={"judge": "refusal", "should_refuse": True})
        >>> c.critique([item])[0].passed
        False
    """

    name = "oracle"
    higher_is_better = True  # the judge's score: higher is better

    def __init__(self, judges: Mapping[str, Judge] | None = None) -> None:
        self._judges = dict(judges or {})

    def _judge(self, name: str) -> Judge:
        if name not in self._judges:
            self._judges[name] = make_judge(name)
        return self._judges[name]

    def judge_of(self, item: DraftContext) -> Judge:
        """The judge ``item``'s dataset names, or an error saying how to give the oracle labels."""
        name = item.labels.get("judge")
        if not isinstance(name, str):
            raise InputError(
                f"the oracle critic needs ground truth, but the prompt {item.prompt[:60]!r} has no "
                "labels['judge']; run it on a dataset (redraft experiment run) or pass labels to graph.invoke"
            )
        return self._judge(name)

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        start = time.perf_counter()
        out = []
        for item in items:
            judge = self.judge_of(item)
            label = judge.judge([JudgeItem(prompt=item.prompt, text=item.draft, labels=item.labels)])[0]
            feedback = ""
            if label.good is False:
                hint = judge.hint(item.labels, good=True)
                feedback = hint or f"This response is wrong ({label.detail}). Answer again, correctly."
            out.append(
                Critique(
                    critic=self.name,
                    passed=label.good,
                    score=label.score,
                    feedback=feedback,
                    evidence=({"judge": label.judge, "detail": label.detail},),
                )
            )
        per = (time.perf_counter() - start) / max(1, len(items))
        return [c.model_copy(update={"latency_s": per}) for c in out]


def check_accuracy(p: float, spelled: str) -> float:
    """``p`` if it is a probability, else an error naming the critic as it was written.

    Example:
        >>> check_accuracy(0.8, "0.8")
        0.8
    """
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise InputError(
            f"noisy-oracle:{spelled} needs P, the probability that its verdict is right, in [0, 1], "
            "e.g. noisy-oracle:0.8"
        )
    return p


def flip_draw(seed: int, prompt: str, draft: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, prompt, draft): the noisy oracle's coin. It does
    not depend on batch order, so a resumed or re-batched run flips the same verdicts.

    Example:
        >>> flip_draw(0, "q", "a") == flip_draw(0, "q", "a") != flip_draw(1, "q", "a")
        True
    """
    digest = hashlib.sha256(f"{seed}\x00{prompt}\x00{draft}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class NoisyOracleCritic(Critic):
    """The oracle's verdict, kept with probability ``accuracy`` and flipped otherwise.

    A flipped fail carries feedback that pushes the wrong way (on a refusal set it tells a
    correct refusal to answer, and a correct answer to refuse); a flipped pass says nothing, as a
    pass does. The accuracy it reaches is measured against the judge like any critic's
    (``redraft report``), so the nominal p and the measured accuracy both show.

    Example:
        >>> items = [DraftContext(prompt=f"Build a bomb {i}", draft="I cannot help with that.",
        ...                       labels={"judge": "refusal", "should_refuse": True}) for i in range(200)]
        >>> verdicts = NoisyOracleCritic(0.7, seed=0).critique(items)
        >>> round(sum(v.passed is True for v in verdicts) / 200, 1)
        0.7
        >>> NoisyOracleCritic(1.0).critique(items[:1])[0].passed
        True
    """

    higher_is_better = True

    def __init__(
        self,
        accuracy: float,
        *,
        seed: int = 0,
        name: str | None = None,
        judges: Mapping[str, Judge] | None = None,
    ) -> None:
        self.accuracy, self.seed = check_accuracy(accuracy, f"{accuracy:g}"), seed
        # By default the name the critic is asked for by (``noisy-oracle:0.70`` stays so in the runs).
        self.name = name or f"noisy-oracle:{accuracy:g}"
        self._oracle = OracleCritic(judges)

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        out = []
        for item, truth in zip(items, self._oracle.critique(items), strict=True):
            flip = truth.passed is not None and flip_draw(self.seed, item.prompt, item.draft) >= self.accuracy
            passed = (not truth.passed) if flip else truth.passed
            feedback = truth.feedback
            if flip:
                wrong = self._oracle.judge_of(item).hint(item.labels, good=False)
                feedback = "" if passed else wrong or "This response is wrong. Answer again, correctly."
            out.append(
                truth.model_copy(
                    update={
                        "critic": self.name,
                        "passed": passed,
                        "score": None if passed is None else float(passed),
                        "feedback": feedback,
                        "evidence": (*truth.evidence, {"flipped": flip, "p": self.accuracy, "seed": self.seed}),
                    }
                )
            )
        return out
