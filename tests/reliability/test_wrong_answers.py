"""Catalogue: inputs that used to give a wrong result with exit code 0."""

from __future__ import annotations

import json

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from redraft.agents.prompts import CHECK_PROMPTS
from redraft.agents.testing import FunctionLLM
from redraft.critics import BCICritic, SelfCritic
from redraft.critics.base import Critic, Critique
from redraft.critics.self_critic import parse_verdict
from redraft.errors import InputError
from redraft.export import FlameFilter, dpo_pairs
from redraft.graphs import CorrectionConfig, ThreadReusedError, build_graph
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance.bci import SpanFilters
from redraft.store import SQLStore
from tests.graphs.helpers import scripted

OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nIt is Paris."


# -- 6: one LangGraph thread, two prompts ------------------------------------------------------------


def test_a_second_prompt_on_a_finished_thread_is_refused_and_the_first_example_is_intact(store_url):
    llm = scripted(["Paris."], [OK])
    saver = InMemorySaver()
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)], checkpointer=saver, store=store_url)
    cfg = {"configurable": {"thread_id": "chat"}}
    first = graph.invoke({"prompt": "Capital of France?", "example_id": "fr"}, cfg)
    assert first["status"] == "accepted"
    with pytest.raises(ThreadReusedError, match=r"already holds a correction .*Use one thread per prompt"):
        graph.invoke({"prompt": "Capital of Italy?"}, cfg)
    assert llm.remaining == 0  # nothing was generated for the second prompt
    store = SQLStore(store_url)
    [run] = store.runs()
    [example] = store.examples(run.id)
    assert (example.key, example.prompt, [r.draft for r in example.rounds]) == ("fr", "Capital of France?", ["Paris."])
    # A new thread is the way to ask the next question.
    llm2 = scripted(["Rome."], [OK])
    graph2 = build_graph(llm=llm2, critics=[SelfCritic(llm2)], checkpointer=saver)
    assert graph2.invoke({"prompt": "Capital of Italy?"}, {"configurable": {"thread_id": "chat/2"}})["final"] == "Rome."


# -- 7: each critic's score direction is used by the exports ------------------------------------------


def test_every_critic_must_declare_its_score_direction():
    with pytest.raises(TypeError, match="must declare `higher_is_better"):

        class Undeclared(Critic):
            name = "x"

            def critique(self, items):
                return [Critique(critic=self.name, passed=True) for _ in items]

    # BCI: the highest span BCI; self-critic: P(fail label). Both are higher-is-worse.
    assert BCICritic.higher_is_better is False and SelfCritic.higher_is_better is False


def test_flame_with_the_bci_reward_prefers_the_draft_with_less_verbatim_belief_text(tmp_path, store_url):
    """BCI is higher-is-worse; the recipe used to take the maximum and so chose the copied draft."""
    claim = "The fastest animal in the world is the turtle, which outruns every cheetah on the savanna."
    (tmp_path / "beliefs.jsonl").write_text(json.dumps({"text": claim}) + "\n")
    build_index([tmp_path / "beliefs.jsonl"], tmp_path / "idx")
    critic = BCICritic(SuffixIndex.load(tmp_path / "idx"), threshold=60.0, filters=SpanFilters(min_len=12))
    llm = FunctionLLM(lambda conv: claim if len(conv) == 1 else "Cheetahs are the fastest land animals.")
    config = CorrectionConfig(max_rounds=2, mode="feedback")  # the same-conversation revise turn the lambda keys on
    graph = build_graph(llm=llm, critics=[critic], config=config, store=store_url)
    out = graph.invoke({"prompt": "What is the fastest animal?"})
    scores = [r["critiques"][0]["score"] for r in out["rounds"]]
    assert scores[0] > 60.0 > scores[1]  # the copy fails TraceShield, the revision passes
    store = SQLStore(store_url)
    [row] = list(dpo_pairs(store, store.runs()[0].id, recipe="flame", flame=FlameFilter(reward="bci"), fmt="standard"))
    assert row["chosen"] == "Cheetahs are the fastest land animals." and row["rejected"] == claim


# -- 9: an NLI verifier with an untrained head --------------------------------------------------------


def test_a_base_encoder_as_nli_verifier_is_refused(tmp_path):
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.critics.factuality.training_data import encoder_dir
    from redraft.critics.factuality.verifiers import NLIVerifier

    with pytest.raises(InputError, match="never trained"):
        NLIVerifier(str(encoder_dir()))
    args = ["run", "--critic", "factuality", "--verifier", f"nli:{encoder_dir()}", "--prompt", "q"]
    result = CliRunner().invoke(cli.app, [*args, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "never trained" in " ".join(result.output.split())


# -- 10: self-check parsing, hand-labelled ------------------------------------------------------------

PARSES = [
    # negations the parser used to ignore
    ("harm", "I don't think this is harmless.", None),
    ("harm", "I don’t think this is harmless.", None),
    ("harm", "It doesn't seem harmful.", None),
    ("harm", "This didn't turn out harmless.", None),
    ("harm", "It won't be harmful.", None),
    ("harm", "I wouldn't call it harmless.", None),
    ("harm", "These instructions aren't harmless.", None),
    ("factual", "The answer isn't correct.", None),
    # a verdict label contradicted by the rest of the answer
    ("factual", "VERDICT: CORRECT\nLooking again, I made a mistake about the year.", None),
    ("factual", "Verdict: CORRECT: Incorrect", None),
    ("factual", "VERDICT: CORRECT\nThe date given is wrong.", None),
    ("factual", "VERDICT: INCORRECT\nActually the answer is correct.", None),
    ("harm", "VERDICT: HARMLESS\nOn reflection the response is harmful.", None),
    ("error", "VERDICT: NO\nI made a mistake: Curie won in 1903.", None),
    # consistent answers keep their verdict
    ("factual", "VERDICT: CORRECT\nThere is no error in the answer.", True),
    ("factual", "VERDICT: CORRECT\nThe answer is correct and complete.", True),
    ("factual", "VERDICT: INCORRECT\nCurie won her first prize in 1903, not 1911.", False),
    ("factual", "VERDICT: INCORRECT\nThe year is wrong.", False),
    ("error", "VERDICT: NO\nNo, there are no errors.", True),
    ("error", "Yes, there is an error: the year.", False),
    ("harm", "HARMLESS. The response declines to give dangerous instructions.", True),
    ("harm", "The response is harmful.", False),
    ("harm", "This response is not harmful.", None),
    ("hhh", "VERDICT: YES\nIt is helpful, with no issues.", True),
]


@pytest.mark.parametrize(("check", "text", "expected"), PARSES)
def test_self_check_parsing_matches_hand_labels(check, text, expected):
    assert parse_verdict(text, CHECK_PROMPTS[check]) is expected
