"""Graph logic with scripted LLMs: stop rules, both modes, state, checkpoints, bad input."""

from __future__ import annotations

import sqlite3

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import ValidationError

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.agents.prompts import CHECK_PROMPTS
from redraft.agents.testing import ScriptedLLM
from redraft.critics import Critique, SelfCritic
from redraft.errors import InputError, StoreUnavailableError
from tests.graphs.helpers import KeywordCritic, scripted

OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nThe capital of France is Paris."
Q = "What is the capital of France?"


def run(llm, critics=None, **config):
    graph = build_graph(llm=llm, critics=critics or [SelfCritic(llm)], config=CorrectionConfig(**config))
    return graph.invoke({"prompt": Q})


def test_accepted_first_draft_stops_after_one_round():
    out = run(scripted(["Paris."], [OK]))
    assert (out["status"], out["final"], len(out["rounds"])) == ("accepted", "Paris.", 1)
    assert out["rounds"][0]["critiques"][0]["passed"] is True


def test_revision_that_passes_is_accepted():
    out = run(scripted(["Lyon.", "Paris."], [BAD, OK]))
    assert out["status"] == "accepted"
    assert [r["draft"] for r in out["rounds"]] == ["Lyon.", "Paris."]
    assert [r["index"] for r in out["rounds"]] == [0, 1]


def test_max_rounds_caps_the_number_of_drafts():
    out = run(scripted(["Lyon.", "Nice.", "Lille."], [BAD] * 3), max_rounds=3)
    assert (out["status"], out["final"], len(out["rounds"])) == ("max_rounds", "Lille.", 3)


def test_max_rounds_one_only_critiques():
    llm = scripted(["Lyon."], [BAD])
    out = run(llm, max_rounds=1)
    assert (out["status"], len(out["rounds"]), llm.remaining) == ("max_rounds", 1, 0)


def test_a_revision_repeating_the_previous_draft_stops_with_no_change():
    out = run(scripted(["Lyon.", " Lyon. "], [BAD, BAD]), max_rounds=5)
    assert (out["status"], len(out["rounds"])) == ("no_change", 2)


def test_no_change_rule_can_be_switched_off():
    out = run(scripted(["Lyon.", "Lyon.", "Lyon."], [BAD] * 3), max_rounds=3, stop_on_no_change=False)
    assert (out["status"], len(out["rounds"])) == ("max_rounds", 3)


def test_an_unparseable_check_is_not_a_pass():
    out = run(scripted(["Lyon.", "Paris."], ["hmm, hard to say", OK]))
    first = Critique.model_validate(out["rounds"][0]["critiques"][0])
    assert first.passed is None and first.raw == "hmm, hard to say"
    assert out["status"] == "accepted" and len(out["rounds"]) == 2


def test_every_critic_must_pass():
    llm = scripted(["Paris, not Lyon.", "Paris."], [OK, OK])
    out = run(llm, critics=[SelfCritic(llm), KeywordCritic("Lyon")])
    verdicts = [[c["passed"] for c in r["critiques"]] for r in out["rounds"]]
    assert verdicts == [[True, False], [True, True]]
    assert out["status"] == "accepted"


def test_feedback_mode_sends_a_revise_instruction_with_every_critique():
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    run(llm, critics=[SelfCritic(llm), KeywordCritic("Lyon")], mode="feedback")
    revise_conv = llm.calls[2][0]
    assert [m["role"] for m in revise_conv] == ["user", "assistant", "user"]
    instruction = revise_conv[-1]["content"]
    assert "self (FAILED): The capital of France is Paris." in instruction
    assert "keyword (FAILED): Do not say 'Lyon'." in instruction


def test_cac_mode_adds_the_checks_as_context_and_asks_again():
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    out = run(llm, critics=[SelfCritic(llm), KeywordCritic("Lyon")], mode="cac")
    revise_conv = llm.calls[2][0]
    question = CHECK_PROMPTS["factual"].question
    assert [(m["role"], m["content"]) for m in revise_conv] == [
        ("user", Q),
        ("assistant", "Lyon."),
        ("user", question),
        ("assistant", BAD),
        ("user", "What does the keyword check say about this response?"),
        ("assistant", "Failed. Do not say 'Lyon'."),
        ("user", Q),
    ]
    # The state keeps the whole conversation, ending with the revision.
    assert out["messages"] == [*revise_conv, {"role": "assistant", "content": "Paris."}]


def test_the_second_self_check_sees_the_accumulated_context_in_cac_mode():
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    run(llm, mode="cac")
    second_check = llm.calls[3][0]
    assert second_check[:5] == llm.calls[2][0][:5]  # the earlier check is part of the context
    assert second_check[-2:] == [
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": CHECK_PROMPTS["factual"].question},
    ]


def test_state_holds_json_rounds_that_validate_as_critiques():
    out = run(scripted(["Lyon.", "Paris."], [BAD, OK]))
    assert set(out) >= {"prompt", "example_id", "messages", "rounds", "status", "final"}
    round0 = out["rounds"][0]
    assert set(round0) == {"index", "draft", "n_tokens", "finish_reason", "gen_latency_s", "critiques"}
    assert round0["n_tokens"] == len(b"Lyon.") and round0["finish_reason"] == "stop"
    critique = Critique.model_validate(round0["critiques"][0])
    assert critique.critic == "self" and critique.passed is False
    assert out["pending"] is None


def test_generation_parameters_reach_the_llm():
    llm = scripted(["A long draft that will be cut"], [OK])
    out = run(llm, generation=SamplingParams(max_new_tokens=6))
    assert out["rounds"][0]["draft"] == "A long" and out["rounds"][0]["finish_reason"] == "length"


def test_system_prompt_opens_every_conversation():
    llm = scripted(["Paris."], [OK])
    run(llm, system_prompt="Be terse.")
    assert llm.calls[0][0][0] == {"role": "system", "content": "Be terse."}


@pytest.mark.parametrize("saver_kind", ["memory", "sqlite"])
def test_checkpointer_resumes_a_crashed_thread_without_redoing_rounds(saver_kind, tmp_path):
    saver = (
        InMemorySaver()
        if saver_kind == "memory"
        else SqliteSaver(sqlite3.connect(tmp_path / "ckpt.sqlite", check_same_thread=False))
    )
    cfg = {"configurable": {"thread_id": "example-1"}}
    config = CorrectionConfig(max_rounds=3)

    def crash(conv):
        raise RuntimeError("GPU fell off the bus")

    first = ScriptedLLM(["Lyon.", BAD, crash])
    graph = build_graph(llm=first, critics=[SelfCritic(first)], config=config, checkpointer=saver)
    with pytest.raises(RuntimeError, match="fell off"):
        graph.invoke({"prompt": Q}, cfg)
    assert graph.get_state(cfg).next == ("revise",)

    # A new process: same checkpointer and thread, a fresh model that only has the rest of the script.
    second = scripted(["Paris."], [OK])
    graph = build_graph(llm=second, critics=[SelfCritic(second)], config=config, checkpointer=saver)
    out = graph.invoke(None, cfg)
    assert out["status"] == "accepted"
    assert [r["draft"] for r in out["rounds"]] == ["Lyon.", "Paris."]
    assert second.remaining == 0 and len(second.calls) == 2


def test_batch_and_stream_work_the_langgraph_way():
    llm = ScriptedLLM([lambda conv: "VERDICT: CORRECT" if "VERDICT" in conv[-1]["content"] else "ok"] * 4)
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)])
    outs = graph.batch([{"prompt": "a"}, {"prompt": "b"}])
    assert [o["status"] for o in outs] == ["accepted", "accepted"]
    llm2 = scripted(["Lyon.", "Paris."], [BAD, OK])
    nodes = [next(iter(chunk)) for chunk in build_graph(llm=llm2, critics=[SelfCritic(llm2)]).stream({"prompt": Q})]
    assert nodes == ["generate", "critique", "revise", "critique"]


async def _ainvoke(graph):
    return await graph.ainvoke({"prompt": Q})


def test_ainvoke():
    import asyncio

    llm = scripted(["Paris."], [OK])
    out = asyncio.run(_ainvoke(build_graph(llm=llm, critics=[SelfCritic(llm)])))
    assert out["status"] == "accepted"


def test_graph_topology_snapshot(snapshot):
    llm = ScriptedLLM([])
    assert build_graph(llm=llm, critics=[SelfCritic(llm)]).get_graph().draw_mermaid() == snapshot


# -- bad input: a clear error before any generation ------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_prompt_is_rejected_before_generation(prompt):
    llm = ScriptedLLM([])
    with pytest.raises(InputError, match="prompt is empty"):
        build_graph(llm=llm, critics=[SelfCritic(llm)]).invoke({"prompt": prompt})
    assert llm.calls == []


def test_prompt_longer_than_the_context_is_rejected_before_generation():
    llm = ScriptedLLM([], context_length=300)
    config = CorrectionConfig(generation=SamplingParams(max_new_tokens=100))
    with pytest.raises(InputError, match=r"takes \d+ tokens.*300-token context.*Shorten the prompt"):
        build_graph(llm=llm, critics=[SelfCritic(llm)], config=config).invoke({"prompt": "x" * 250})
    assert llm.calls == []


def test_max_rounds_below_one_is_rejected():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        CorrectionConfig(max_rounds=0)


def test_unknown_mode_lists_the_known_modes():
    with pytest.raises(
        ValidationError, match="unknown mode 'refine'; known modes: fresh, feedback, cac, grounded, reanswer"
    ):
        CorrectionConfig(mode="refine")
    with pytest.raises(ValidationError, match="unknown mode 'fesh' \\(did you mean 'fresh'\\?\\)"):
        CorrectionConfig(mode="fesh")


def test_duplicate_critic_names_are_rejected():
    llm = ScriptedLLM([])
    with pytest.raises(InputError, match="critic names must be unique"):
        build_graph(llm=llm, critics=[SelfCritic(llm), SelfCritic(llm)])


@pytest.mark.parametrize(
    "url",
    ["sqlite:////nonexistent-dir/sub/redraft.db", "postgresql+psycopg://nobody@127.0.0.1:1/redraft"],
)
def test_unreachable_database_fails_at_build_time(url):
    llm = ScriptedLLM([])
    with pytest.raises(StoreUnavailableError, match=r"cannot open database .*Fix:"):
        build_graph(llm=llm, critics=[SelfCritic(llm)], store=url)
    assert llm.calls == []


def test_the_runners_reducers_are_langgraphs():
    """The batched runner merges node updates with the reducers LangGraph itself builds from the
    state's annotations, so the two cannot drift."""
    from langgraph.graph import StateGraph

    from redraft.graphs.state import REDUCERS, CorrectionState

    channels = StateGraph(CorrectionState).channels
    built = {k: c.operator for k, c in channels.items() if hasattr(c, "operator")}
    assert built == REDUCERS and set(built) == {"messages", "rounds"}


def test_custom_stream_announces_each_draft_and_its_critiques_in_order():
    """`graph.stream(stream_mode="custom")` yields one draft event and one critique event per round,
    the same drafts and verdicts the final state holds."""
    from redraft.agents.testing import ScriptedLLM
    from redraft.critics import SelfCritic
    from redraft.graphs import build_graph

    script = [
        "Lyon.",
        "VERDICT: INCORRECT\nIt is Paris.",
        "Marseille.",
        "VERDICT: INCORRECT\nNo.",
        "Paris.",
        "VERDICT: CORRECT",
    ]
    graph = build_graph(llm=(llm := ScriptedLLM(script)), critics=[SelfCritic(llm, verdicts="text")])
    events = list(graph.stream({"prompt": "Capital of France?"}, stream_mode="custom"))
    final = build_graph(llm=(llm := ScriptedLLM(script)), critics=[SelfCritic(llm, verdicts="text")]).invoke(
        {"prompt": "Capital of France?"}
    )
    assert [(e["event"], e["round"]) for e in events] == [(kind, r) for r in range(3) for kind in ("draft", "critique")]
    assert [e["text"] for e in events if e["event"] == "draft"] == [r["draft"] for r in final["rounds"]]
    verdicts = [[c["passed"] for c in e["critiques"]] for e in events if e["event"] == "critique"]
    assert verdicts == [[c["passed"] for c in r["critiques"]] for r in final["rounds"]] == [[False], [False], [True]]
    assert events[-1]["status"] == final["status"] == "accepted"
