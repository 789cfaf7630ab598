"""Whether a text states a claim or refutes it.

A reviser told that "Tunis is a city in Nepal" is a known false claim fixes the draft best by
saying so ("It is false that Tunis is a city in Nepal; it is the capital of Tunisia."). That fix
quotes the claim, so a verbatim detector would fail it, and an entailment model that learned
near-verbatim support would call it an assertion. Both the BCI critic (for false-claims corpora)
and the evasion check therefore ask this module first.

Two signals, both deliberately narrow so that a paraphrase cannot pass as a refutation:

* an explicit refutation phrase ("false", "not true", "a myth", "incorrect", ...) in the
  sentence that holds the claim or in the sentence right before or after it;
* a negation right where the text leaves the claim: the claim's words run verbatim up to a
  point and the text continues with "not", "n't" or "never" ("... is not the turtle").
"""

from __future__ import annotations

import re

from redraft.critics.factuality.claims import sentences

_REFUTING = re.compile(
    r"\b(?:false|falsely|untrue|not true|isn't true|is not the case|incorrect|inaccurate|not accurate|not correct|"
    r"a myth|misconception|misinformation|debunked|mistaken|erroneous|there is no evidence|no evidence that)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:not|never|no|none|cannot)\b|n't\b", re.IGNORECASE)
_NEGATION = re.compile(r"^\s*(?:not|never|no longer|n't|isn't|aren't|wasn't|weren't|doesn't|don't|didn't)\b", re.I)


def refutation_cue(sentence: str) -> bool:
    """Whether a sentence carries an explicit refutation phrase.

    Example:
        >>> refutation_cue("It is false that the turtle is the fastest animal."), refutation_cue("Turtles are slow.")
        (True, False)
    """
    return _REFUTING.search(sentence) is not None


def has_negation(text: str) -> bool:
    """Whether a text has a negation anywhere (the evasion check sets aside a sentence that
    negates a claim the claim itself does not negate).

    Example:
        >>> has_negation("Tunis is not in Nepal."), has_negation("Tunis isn't in Nepal."), has_negation("Tunis.")
        (True, True, False)
    """
    return _NEGATED.search(text) is not None


def refutes_quote(text: str, quote: str) -> bool:
    """Whether every occurrence of ``quote`` in ``text`` is refuted where it stands: its sentence
    or a neighbouring one has a refutation phrase, or the text negates right after the quote.

    ``False`` when ``quote`` does not occur in ``text``: there is nothing to refute.

    Example:
        >>> claim = "The fastest animal in the world is the turtle"
        >>> refutes_quote(f"{claim}. That is a myth: the peregrine falcon is.", claim)
        True
        >>> refutes_quote(f"{claim}. It can run very fast.", claim)
        False
        >>> refutes_quote("The fastest animal in the world is not the turtle.", "The fastest animal in the world is")
        True
    """
    if not quote or quote not in text:
        return False
    parts = sentences(text)
    # Character span of each sentence, found in order (pysbd keeps the text, only trims it).
    spans, at = [], 0
    for p in parts:
        start = text.find(p, at)
        start = at if start < 0 else start
        spans.append((start, start + len(p)))
        at = start + len(p)
    pos = text.find(quote)
    while pos >= 0:
        end = pos + len(quote)
        if not _NEGATION.match(text[end:]):
            near = [i for i, (a, b) in enumerate(spans) if a < end and pos < b]
            window = {j for i in near for j in (i - 1, i, i + 1) if 0 <= j < len(parts)}
            # The quote itself may contain a cue word ("a false alarm"): look only outside it.
            outside = [parts[j] if j not in near else parts[j].replace(quote.strip(), " ") for j in sorted(window)]
            if not any(refutation_cue(s) for s in outside):
                return False
        pos = text.find(quote, pos + 1)
    return True


_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\d[\d.,]*)")
FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "he",
        "she",
        "they",
        "them",
        "we",
        "i",
        "you",
        "his",
        "her",
        "their",
        "our",
        "my",
        "your",
        "in",
        "on",
        "at",
        "of",
        "for",
        "from",
        "by",
        "with",
        "as",
        "to",
        "and",
        "or",
        "but",
        "if",
        "when",
        "while",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "where",
        "why",
        "how",
        "yes",
        "no",
        "not",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "all",
        "any",
        "each",
        "every",
        "some",
        "many",
        "most",
        "much",
        "more",
        "few",
        "one",
        "nothing",
        "something",
        "anything",
        "everything",
        "because",
        "although",
        "though",
        "sure",
        "okay",
        "ok",
        "well",
        "oh",
        "hi",
        "hello",
        "certainly",
        "absolutely",
        "indeed",
        "actually",
    ]
)
"""Words that name nothing: function words, and the interjections replies open with. A claim's
names (:func:`names_of`) and its subject (the factuality critic's) are the words outside it."""


def names_of(text: str) -> set[str]:
    """The names and numbers a text states: capitalized words that are not function words
    (sentence-initial "The" is none), and numerals; lower-cased, without a possessive.

    Example:
        >>> sorted(names_of("The capital of Australia is Sydney, since 1901."))
        ['1901', 'australia', 'sydney']
    """
    out = set()
    for m in _NAME.finditer(text):
        word = re.sub(r"['’]s$", "", m.group().rstrip(".,")).lower()
        if word and word not in FUNCTION_WORDS:
            out.add(word)
    return out


def drops_a_name(sentence: str, claim: str) -> bool:
    """Whether ``sentence`` leaves out a name or number the claim states. Such a sentence cannot
    assert the claim ("The capital of Australia is Canberra." does not assert "... is Sydney."),
    whatever a cross-encoder trained on near-verbatim support says (it gave that pair 0.97).

    Example:
        >>> drops_a_name("The capital of Australia is Canberra.", "The capital of Australia is Sydney.")
        True
        >>> drops_a_name("Turtles are the fastest animals.", "The fastest animal in the world is the turtle.")
        False
    """
    words = {re.sub(r"['’]s$", "", w).lower() for w in re.findall(r"[\w'’]+", sentence)}
    return any(name not in words for name in names_of(claim))
