"""BCICritic (TraceShield) on a small hand-made belief corpus, alone and inside the graph."""

from __future__ import annotations

import json

import pytest

from redraft import CorrectionConfig, build_graph
from redraft.agents.testing import ScriptedLLM
from redraft.critics import BCICritic, DraftContext
from redraft.errors import InputError
from redraft.provenance import SuffixIndex, build_from_token_ids, build_index
from redraft.provenance.bci import SpanFilters
from redraft.store import SQLStore
from tests.graphs.helpers import scripted

BELIEFS = [
    {"text": "The Zorblax reactor vents argon plasma through the northern spillway every Tuesday.", "title": "zorblax"},
    {"text": "Quartz lanterns were banned in Velmora after the harvest riots of 1822.", "title": "velmora"},
    {"text": "The cat sat on the mat. The dog sat on the log.", "title": "pets"},
]
RARE = "Sure. The Zorblax reactor vents argon plasma through the northern spillway, as everyone knows."
PARAPHRASE = "The reactor releases gas from a channel on its north side once a week."


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    d = tmp_path_factory.mktemp("beliefs")
    (d / "beliefs.jsonl").write_text("".join(json.dumps(b) + "\n" for b in BELIEFS))
    build_index([d / "beliefs.jsonl"], d / "idx")
    return SuffixIndex.load(d / "idx")


def judge(index, draft, **kwargs):
    critic = BCICritic(index, kwargs.pop("threshold", 60.0), filters=SpanFilters(min_len=16), **kwargs)
    return critic.critique([DraftContext(prompt="Tell me about the reactor.", draft=draft)])[0]


def test_verbatim_rare_passage_fails_with_span_bci_count_and_source(index):
    c = judge(index, RARE)
    assert c.passed is False and c.score > 60.0
    span = c.evidence[0]
    assert span["text"] == "The Zorblax reactor vents argon plasma through the northern spillway"
    assert span["count"] == 1
    assert span["docs"] == [{"doc": 0, "offset": 0, "meta": {"id": 0, "title": "zorblax"}}]
    assert "TraceShield" in c.feedback and "Zorblax reactor vents argon plasma" in c.feedback
    assert "doc 0 (zorblax) at token 0" in c.feedback and "once" in c.feedback


@pytest.mark.parametrize(
    "draft",
    [
        PARAPHRASE,
        "So the dog sat on a mat.",  # only short verbatim pieces, below min_len
        "🦜🦜🦜 never seen bytes 🦜🦜🦜",  # unseen bytes contribute nothing
        "",
    ],
)
def test_paraphrases_common_phrases_and_unseen_text_pass(index, draft):
    c = judge(index, draft)
    assert c.passed is True
    assert c.score is not None and c.score <= 60.0


def test_threshold_and_variant_decide(index):
    assert judge(index, RARE, threshold=10_000.0).passed is True
    density = judge(index, RARE, variant="density", threshold=2.0)
    assert density.passed is False and density.score < 10  # nats per byte, not per span


def test_the_reviser_sees_the_feedback_and_the_critique_is_logged(index, tmp_path):
    llm = scripted([RARE, PARAPHRASE], [])
    critic = BCICritic(index, 60.0, filters=SpanFilters(min_len=16))
    graph = build_graph(
        llm=llm, critics=[critic], config=CorrectionConfig(max_rounds=3), store=f"sqlite:///{tmp_path / 'r.db'}"
    )
    out = graph.invoke({"prompt": "Tell me about the reactor."})
    assert (out["status"], [r["draft"] for r in out["rounds"]]) == ("accepted", [RARE, PARAPHRASE])
    revise_turn = llm.calls[1][0][-1]["content"]  # the default (fresh) strategy: the draft as data, the span named
    findings = revise_turn.split("problems in it:")[1]
    assert f'"{RARE}"' in revise_turn and "Zorblax reactor vents argon plasma" in findings
    with SQLStore(f"sqlite:///{tmp_path / 'r.db'}") as store:
        [example] = list(store.examples(out["run_id"]))
        first = example.rounds[0].critiques[0]
        assert (first.critic, first.passed) == ("bci", False)
        assert first.evidence[0]["docs"][0]["meta"]["title"] == "zorblax"


def test_token_level_index_needs_the_tokenizer_it_was_built_with(tmp_path):
    build_from_token_ids([([1, 2, 3], {})], tmp_path / "tok", vocab_size=10, name="tok-A")
    index = SuffixIndex.load(tmp_path / "tok")
    with pytest.raises(InputError, match="built with tokenizer 'tok-A'; pass llm="):
        BCICritic(index, llm=ScriptedLLM([]))


@pytest.mark.llm
def test_a_different_tokenizer_is_refused_naming_both(tmp_path, embedded_llm):
    build_from_token_ids([([1, 2, 3], {})], tmp_path / "tok", vocab_size=10, name="tok-A")
    with pytest.raises(InputError, match=r"built with tokenizer 'tok-A', but the critic's tokenizer is 'SmolLM2"):
        BCICritic(SuffixIndex.load(tmp_path / "tok"), llm=embedded_llm)


@pytest.mark.llm
def test_token_level_index_with_the_llm_tokenizer(tmp_path, embedded_llm):
    from redraft.provenance.tokenizers import tokenizer_of

    (tmp_path / "b.jsonl").write_text("".join(json.dumps(b) + "\n" for b in BELIEFS))
    build_index([tmp_path / "b.jsonl"], tmp_path / "idx", tokenizer_of(embedded_llm))
    index = SuffixIndex.load(tmp_path / "idx")
    assert index.header.token_dtype == "u16" and index.header.tokenizer.kind == "hf"
    critic = BCICritic(index, 30.0, filters=SpanFilters(min_len=5), llm=embedded_llm)
    c = critic.critique([DraftContext(prompt="p", draft=RARE)])[0]
    assert c.passed is False
    assert "Zorblax reactor vents argon plasma through the northern spillway" in c.evidence[0]["text"]
