"""Factuality critic: claims, the local KB, verifiers, scoring, and the critic inside the graph."""

from __future__ import annotations

import json

import pytest

from redraft import CorrectionConfig, build_graph
from redraft.agents.testing import ScriptedLLM
from redraft.critics import DraftContext
from redraft.critics.factuality import (
    FactualityCritic,
    KnowledgeBase,
    LexicalVerifier,
    LLMVerifier,
    NLIVerifier,
    Passage,
    factscore,
    split_claims,
)
from redraft.critics.factuality.verifiers import Verdict, Verifier
from redraft.errors import InputError, ModelNotFoundError
from tests.graphs.helpers import scripted, use_llm

CURIE = "Tell me about Marie Curie."


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.default()


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        (
            "Sure! Marie Curie was born in Warsaw in 1867. I hope this helps.",
            ["Marie Curie was born in Warsaw in 1867."],
        ),
        ("Dr. Curie won two Nobel Prizes. Isn't that amazing?", ["Dr. Curie won two Nobel Prizes."]),
        ("Of course. Let me know if you need more!", []),
        (
            "The river is very long and carries a great deal of water to the sea.",
            ["The river is very long and carries a great deal of water to the sea."],
        ),
        ("", []),
    ],
)
def test_claims_keep_only_checkable_sentences(text, claims):
    assert split_claims(text) == claims


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("Marie Curie won the Nobel Prize in Physics", "Marie Curie"),
        ("Charlie Chaplin was a comic actor of silent film", "Charlie Chaplin"),
        ("Albert Einstein developed the theory of relativity", "Albert Einstein"),
        ("Mount Everest is the highest mountain", "Mount Everest"),
        ("Jupiter is the largest planet", "Jupiter"),
    ],
)
def test_retrieval_finds_the_entity_article(kb, query, title):
    assert title in [p.title for p in kb.search([query], k=3)[0]]


# Hand-labelled claims about KB entities, on which the lexical baseline is right.
LABELLED = [
    ("Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie.", True),
    ("Marie Curie won the 1911 Nobel Prize in Chemistry.", True),
    ("Marie Curie was born in 1920 in Paris.", False),
    ("Albert Einstein was a German-born theoretical physicist.", True),
    ("Mount Everest is the highest mountain on Earth above sea level.", True),
    ("Jupiter is the fifth planet from the Sun.", True),
    ("Jupiter is the ninth planet from the Sun, discovered in 1930.", False),
]


@pytest.mark.parametrize(("claim", "supported"), LABELLED)
def test_lexical_baseline_on_hand_labelled_claims(kb, claim, supported):
    evidence = kb.search([claim], k=3)
    [verdict] = LexicalVerifier().verify([claim], evidence)
    assert (verdict.p_supported >= 0.5) is supported


def test_the_issue_example_fails_with_feedback_naming_the_claim_and_evidence(kb):
    draft = "Marie Curie was born in 1920 in Paris and won the Nobel Prize in Literature."
    c = FactualityCritic(kb, LexicalVerifier(), threshold=0.8).critique([DraftContext(prompt=CURIE, draft=draft)])[0]
    assert (c.passed, c.score) == (False, 0.0)
    assert f'Refuted: "{draft}"' in c.feedback and "Best evidence [Marie Curie]" in c.feedback
    assert c.evidence[0]["evidence"][0]["title"] == "Marie Curie"


def test_the_default_critic_reads_the_shipped_verifier_and_quotes_the_window_it_read(kb):
    draft = "Marie Curie was born in 1920 in Paris and won the Nobel Prize in Literature."
    critic = FactualityCritic(kb)
    assert critic.verifier.name == "default"
    c = critic.critique([DraftContext(prompt=CURIE, draft=draft)])[0]
    assert (c.passed, c.score) == (False, 0.0)
    window = c.evidence[0]["window"]
    assert window.startswith("Marie Curie: ") and f'Best evidence: "{window}"' in c.feedback


@pytest.mark.parametrize(("claim", "supported"), LABELLED)
def test_the_shipped_verifier_on_hand_labelled_claims(kb, claim, supported):
    [verdict] = FactualityCritic(kb).verifier.verify([claim], kb.search([claim], k=3))
    assert (verdict.p_supported >= 0.5) is supported


def test_no_checkable_claim_is_not_applicable(kb):
    c = FactualityCritic(kb).critique([DraftContext(prompt=CURIE, draft="Sure! I hope this helps.")])[0]
    assert c.passed is None and c.score is None


def test_factscore_and_length_penalty():
    assert factscore(3, 4) == 0.75
    assert factscore(10, 20, gamma=10) == 0.5
    assert factscore(2, 2, gamma=10) == pytest.approx(__import__("math").exp(1 - 5))


@pytest.mark.parametrize("mode", ["feedback", "fresh", "grounded", "reanswer"])
def test_the_reviser_sees_the_unsupported_claims_and_their_passages(kb, mode):
    wrong = "Marie Curie was born in 1920 in Paris."
    right = "Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie."
    llm = scripted([wrong, right], [])
    critic = FactualityCritic(kb, LexicalVerifier())
    graph = build_graph(llm=llm, critics=[critic], config=CorrectionConfig(max_rounds=3, mode=mode))
    out = graph.invoke({"prompt": CURIE})
    assert out["status"] == "accepted" and out["final"] == right
    conversation = llm.calls[1][0]
    instruction = conversation[-1]["content"]
    # The passages the claim was judged against, whole: the critique stores all k of them.
    [row] = out["rounds"][0]["critiques"][0]["evidence"]
    passages = [p["text"] for p in row["evidence"]]
    assert len(passages) == critic.k and any(p["title"] == "Marie Curie" for p in row["evidence"])
    if mode == "feedback":
        assert f'Refuted: "{wrong}"' in instruction and "Best evidence [Marie Curie]" in instruction
    else:
        assert all(p[:200] in instruction for p in passages)
    if mode == "reanswer":  # a new conversation, and the draft is not shown
        assert len(conversation) == 1 and wrong not in instruction and CURIE in instruction
    elif mode == "fresh":
        assert len(conversation) == 1 and f'"{wrong}"' in instruction and CURIE in instruction
    elif mode == "grounded":  # the same conversation, continued
        assert conversation[1] == {"role": "assistant", "content": wrong}


# -- knowledge bases and verifiers: bad input ------------------------------------------------------


def test_malformed_and_empty_kb_files_name_the_line(tmp_path):
    bad = tmp_path / "kb.jsonl"
    bad.write_text('{"title": "A", "text": "fine"}\n{"title": "B", "text": oops}\n')
    with pytest.raises(InputError, match=r"kb.jsonl:2 is not valid JSON"):
        KnowledgeBase.from_jsonl(bad)
    bad.write_text('{"title": "A"}\n')
    with pytest.raises(InputError, match=r"kb.jsonl:1 needs a string field 'text'"):
        KnowledgeBase.from_jsonl(bad)
    bad.write_text("\n\n")
    with pytest.raises(InputError, match="is empty"):
        KnowledgeBase.from_jsonl(bad)


def test_interrupted_default_kb_build_leaves_nothing(tmp_path, monkeypatch):
    import bm25s

    monkeypatch.setenv("REDRAFT_CACHE_DIR", str(tmp_path))

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bm25s.BM25, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        KnowledgeBase.default()
    assert list((tmp_path / "kb").iterdir()) == []


def test_missing_verifier_path_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no-such-verifier does not exist"):
        NLIVerifier(str(tmp_path / "no-such-verifier"))


def test_llm_verifier_needs_log_probabilities():
    with pytest.raises(InputError, match="exposes no log-probabilities"):
        LLMVerifier(ScriptedLLM([])).verify(["Paris is in France."], [[]])


@pytest.fixture
def tiny_nli(tmp_path):
    """A randomly initialised 2-label BERT classifier with a word-level tokenizer, made offline."""
    return _tiny_nli(tmp_path / "nli", {0: "unsupported", 1: "supported"})


def _tiny_nli(path, id2label):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "title", "text", "curie", "won", "prize", "paris", ":", "."]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=24,
    )
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_nli_verifier_loads_a_local_model_and_records_truncation(tiny_nli):
    verifier = NLIVerifier(str(tiny_nli))
    short = [Passage(doc=0, title="Curie", text="curie won prize")]
    long = [Passage(doc=0, title="Curie", text=" ".join(["curie won prize ."] * 20))]
    verdicts = verifier.verify(["curie won prize", "curie won prize"], [short, long])
    assert [v.truncated for v in verdicts] == [False, True]
    assert all(0.0 <= v.p_supported <= 1.0 for v in verdicts)
    assert verifier.entail == 1
    assert verifier.refute is None and all(v.p_refuted is None for v in verdicts)  # two classes: no refuted class


@pytest.mark.parametrize(
    ("id2label", "entail", "refute"),
    [
        ({0: "refuted", 1: "supported", 2: "not enough evidence"}, 1, 0),  # redraft's own (v4)
        ({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, 2, 0),  # an MNLI model's
        ({0: "refuted", 1: "supported", 2: "other"}, 1, None),  # no class names silence
    ],
)
def test_a_three_class_verifier_reports_the_refuted_probability(tmp_path, id2label, entail, refute):
    verifier = NLIVerifier(str(_tiny_nli(tmp_path / "nli", id2label)))
    assert (verifier.entail, verifier.refute) == (entail, refute)
    evidence = [Passage(doc=0, title="Curie", text="curie won prize")]
    for per_passage in (False, True):
        verifier.per_passage = per_passage
        [v] = verifier.verify(["curie won prize"], [evidence])
        if refute is None:
            assert v.p_refuted is None
        else:  # the three probabilities are the model's softmax: they sum to one
            assert v.p_refuted is not None and 0.0 < v.p_refuted < 1.0 and v.p_supported + v.p_refuted < 1.0


class _Fixed(Verifier):
    """Gives every claim the same three-class verdict."""

    name = "fixed"

    def __init__(self, p_supported: float, p_refuted: float | None) -> None:
        self.p = (p_supported, p_refuted)

    def verify(self, claims, evidence):
        return [Verdict(self.p[0], p_refuted=self.p[1]) for _ in claims]


@pytest.mark.parametrize(
    ("p_supported", "p_refuted", "label"),
    [(0.1, 0.6, "refuted"), (0.1, 0.3, "not enough evidence"), (0.7, 0.2, "supported"), (0.1, None, "refuted")],
)
def test_a_three_class_verifier_decides_refuted_against_not_enough_evidence(kb, p_supported, p_refuted, label):
    """The evidence speaks of Marie Curie, so the subject rule alone says refuted; a verifier with
    a third class decides for itself (None: a two-class verifier, and the subject rule)."""
    item = [DraftContext(prompt="q", draft="Marie Curie was born in 1920 in Paris.")]
    [c] = FactualityCritic(kb, _Fixed(p_supported, p_refuted)).critique(item)
    assert [r["label"] for r in c.evidence] == [label]
    assert c.passed is (label != "refuted")


@pytest.mark.llm
def test_llm_verifier_scores_from_true_false_logits(embedded_llm, kb):
    claims = ["Marie Curie won the 1911 Nobel Prize in Chemistry.", "Marie Curie was born in 1920 in Paris."]
    evidence = kb.search(claims, k=2)
    first = LLMVerifier(embedded_llm).verify(claims, evidence)
    again = LLMVerifier(embedded_llm).verify(claims, evidence)
    assert all(0.0 < v.p_supported < 1.0 for v in first)
    assert [v.p_supported for v in first] == pytest.approx([v.p_supported for v in again])


def test_cli_runs_the_factuality_critic_on_a_jsonl_kb(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from redraft import cli

    (tmp_path / "kb.jsonl").write_text(json.dumps({"title": "Paris", "text": "Paris is the capital of France."}) + "\n")
    llm = scripted(["Lyon is the capital of France, since 1999.", "Paris is the capital of France."], [])
    use_llm(monkeypatch, llm)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli.app,
        [
            "run",
            "--prompt",
            "What is the capital of France?",
            "--critic",
            "factuality",
            "--kb",
            str(tmp_path / "kb.jsonl"),
            "--verifier",
            "lexical",  # the plumbing under test; the shipped verifier scores "Lyon ..." 0.72 here
            "--db",
            str(tmp_path / "r.db"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "factuality: FAIL" in result.output and "accepted" in result.output


def test_per_passage_scoring_keeps_each_claims_best_passage(tiny_nli):
    """per_passage: a claim's score is the max over its passages, each scored alone (oracle:
    scoring every passage on its own with the joined-mode verifier)."""
    joined = NLIVerifier(str(tiny_nli))
    split = NLIVerifier(str(tiny_nli), per_passage=True, max_length=24)
    passages = [
        Passage(doc=0, title="Curie", text="curie won prize"),
        Passage(doc=1, title="Curie", text=" ".join(["curie won prize ."] * 20)),
    ]
    claims = ["curie won prize", "prize"]
    expected = [max(joined.verify([c], [[p]])[0].p_supported for p in passages) for c in claims]
    got = split.verify(claims, [passages, passages])
    assert [v.p_supported for v in got] == pytest.approx(expected)
    assert all(v.truncated for v in got)  # the long passage was cut for both claims
    assert split.verify(["curie"], [[]])[0].p_supported == pytest.approx(joined.verify(["curie"], [[]])[0].p_supported)


def test_window_mode_scores_the_best_window_once_per_claim(tiny_nli):
    """window_words: one pair per claim, whose premise is best_window's text (oracle: the
    verifier's own pair scoring on that text)."""
    from redraft.critics.factuality.windows import best_window

    verifier = NLIVerifier(str(tiny_nli), window_words=3)
    passages = [
        Passage(doc=0, title="Curie", text="paris . paris . paris . curie won prize ."),
        Passage(doc=1, title="Paris", text="paris paris"),
    ]
    claims = ["curie won prize", "paris"]
    got = verifier.verify(claims, [passages, passages])
    windows = [best_window(c, passages, 3).text for c in claims]
    assert [v.premise for v in got] == windows == ["Curie: curie won prize", "Curie: paris . paris"]
    expected = verifier._verify(claims, windows)
    assert [v.p_supported for v in got] == pytest.approx([v.p_supported for v in expected])


def test_length_sorted_batches_give_the_same_scores_as_one_batch(tiny_nli):
    one = NLIVerifier(str(tiny_nli), batch_size=64)
    small = NLIVerifier(str(tiny_nli), batch_size=2)
    texts = ["curie won prize", "paris . " * 6, "won", "curie . prize . paris . won", "title text paris"]
    claims = ["curie won", "paris", "prize won curie paris", "won", "curie"]
    evidence = [[Passage(doc=i, title="", text=t)] for i, t in enumerate(texts)]
    assert [v.p_supported for v in small.verify(claims, evidence)] == pytest.approx(
        [v.p_supported for v in one.verify(claims, evidence)], abs=1e-5
    )
    with pytest.raises(InputError, match="batch_size"):
        NLIVerifier(str(tiny_nli), batch_size=0)


def test_feedback_quotes_the_window_the_verifier_read(tiny_nli):
    kb = KnowledgeBase.from_documents([{"title": "Curie", "text": "paris paris paris paris . curie won prize ."}])
    verifier = NLIVerifier(str(tiny_nli), window_words=3)
    critic = FactualityCritic(kb, verifier, support_threshold=1.01)  # every claim unsupported
    [c] = critic.critique([DraftContext(prompt="Tell me about Curie.", draft="Curie won the prize in Paris.")])
    assert c.passed is False
    assert c.evidence[0]["window"].startswith("Curie: ")
    assert f'Best evidence: "{c.evidence[0]["window"]}"' in c.feedback


def test_a_claim_longer_than_the_context_is_cut_and_recorded(tiny_nli):
    verifier = NLIVerifier(str(tiny_nli), window_words=2)  # the tiny model reads 24 tokens
    claim = " ".join(["curie won prize"] * 12)
    [v] = verifier.verify([claim], [[Passage(doc=0, title="", text="curie won prize")]])
    assert v.truncated and 0.0 <= v.p_supported <= 1.0


def test_a_true_claim_the_knowledge_base_does_not_cover_passes_by_default(kb):
    """Three labels: the summaries say nothing of a claim's subject, so it is 'not enough
    evidence', stored and shown but not held against the draft (unless asked: unknown='fail')."""
    absent = "The axolotl is a salamander that keeps its larval features into adulthood."
    refuted = "Marie Curie was born in 1920 in Paris and won the Nobel Prize in Literature."
    for draft, label, by_default in [(absent, "not enough evidence", True), (refuted, "refuted", False)]:
        item = [DraftContext(prompt="Tell me a fact.", draft=draft)]
        c = FactualityCritic(kb, LexicalVerifier()).critique(item)[0]
        assert [r["label"] for r in c.evidence] == [label] and c.passed is by_default, c.feedback
        strict = FactualityCritic(kb, LexicalVerifier(), unknown="fail").critique(item)[0]
        assert strict.passed is False
    assert (
        'Not enough evidence: "The axolotl'
        in FactualityCritic(kb, LexicalVerifier()).critique([DraftContext(prompt="q", draft=absent)])[0].feedback
    )


@pytest.mark.parametrize(
    ("claim", "passages", "label"),
    [  # hand-labelled: the evidence speaks of the subject (refuted) or is silent (not enough evidence)
        ("Marie Curie was born in Paris.", [("Marie Curie", "Born in Warsaw in 1867.")], "refuted"),
        ("The rabbit has hard bony armor.", [("Rabbit", "Rabbits are small mammals with fur.")], "refuted"),
        ("Rabbits have armor.", [("Rabbit", "A rabbit has soft fur.")], "refuted"),
        ("Pluto is a dwarf planet.", [("Marie Curie", "Born in Warsaw in 1867.")], "not enough evidence"),
        ("The axolotl keeps larval gills.", [("Rabbit", "A rabbit has soft fur.")], "not enough evidence"),
    ],
)
def test_claim_labels_by_hand(claim, passages, label):
    from redraft.critics.factuality.kb import Passage
    from redraft.critics.factuality.labels import claim_label

    found = [Passage(doc=str(i), title=t, text=x) for i, (t, x) in enumerate(passages)]
    assert claim_label(claim, found, supported=False) == label
    assert claim_label(claim, found, supported=True) == "supported"
