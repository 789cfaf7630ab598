"""The human critic: the graph pauses with interrupt() and resumes with a person's verdict."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from typer.testing import CliRunner

from redraft import cli
from redraft.agents.testing import FunctionLLM, ScriptedLLM
from redraft.critics import HumanCritic
from redraft.errors import InputError
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.graphs import CorrectionConfig, build_graph
from redraft.store.sql import SQLStore
from tests.graphs.helpers import use_llm


def test_a_person_rejects_a_draft_and_accepts_the_revision(tmp_path):
    llm = ScriptedLLM(["Lyon.", "Paris."])
    store = SQLStore(f"sqlite:///{tmp_path / 'h.db'}")
    graph = build_graph(
        llm=llm,
        critics=[HumanCritic()],
        config=CorrectionConfig(max_rounds=3),
        store=store,
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "q1"}}
    paused = graph.invoke({"prompt": "Capital of France?"}, cfg)["__interrupt__"][0].value
    assert paused == {"critic": "human", "prompt": "Capital of France?", "draft": "Lyon.", "round": 0}
    paused = graph.invoke(Command(resume={"passed": False, "feedback": "Wrong city."}), cfg)["__interrupt__"][0].value
    assert (paused["draft"], paused["round"]) == ("Paris.", 1)
    out = graph.invoke(Command(resume={"passed": True}), cfg)
    assert (out["status"], out["final"]) == ("accepted", "Paris.")
    assert "Wrong city." in llm.calls[1][0][-1]["content"]  # the person's feedback reached the reviser
    [example] = list(store.examples(store.runs()[0].id))
    assert [(c.critic, c.passed, c.feedback) for r in example.rounds for c in r.critiques] == [
        ("human", False, "Wrong city."),
        ("human", True, "(no feedback)"),
    ]


@pytest.mark.parametrize("bad", ["pass", {"verdict": "yes"}, {"passed": "maybe"}])
def test_a_malformed_verdict_is_asked_again_and_does_not_poison_the_example(tmp_path, bad):
    """A bad verdict used to be stored by LangGraph and replayed on every later resume, so no
    valid verdict could ever land, even from a new process. Now the critic asks again, naming the
    problem, and the next valid verdict is the one recorded."""
    from redraft.graphs.checkpoint import sqlite_checkpointer

    cfg = {"configurable": {"thread_id": "q2"}}
    store = SQLStore(f"sqlite:///{tmp_path / 'h.db'}")

    def graph(saver):
        config = CorrectionConfig(max_rounds=1)
        return build_graph(
            llm=ScriptedLLM(["Lyon."]), critics=[HumanCritic()], config=config, store=store, checkpointer=saver
        )

    with sqlite_checkpointer(tmp_path / "c.sqlite") as saver:
        graph(saver).invoke({"prompt": "Capital?"}, cfg)
        again = graph(saver).invoke(Command(resume=bad), cfg)["__interrupt__"][0].value
    assert again["draft"] == "Lyon." and "invalid fields in the human critic's verdict" in again["error"]
    with (
        pytest.raises(InputError, match=r"Command\(resume=None\) carries no verdict"),
        sqlite_checkpointer(tmp_path / "c.sqlite") as saver,
    ):
        graph(saver).invoke(Command(resume=None), cfg)
    with sqlite_checkpointer(tmp_path / "c.sqlite") as saver:  # a new "process": a fresh graph and connection
        out = graph(saver).invoke(Command(resume={"passed": False, "feedback": "Lyon is wrong."}), cfg)
    assert "__interrupt__" not in out and out["status"] != "running"
    [example] = list(store.examples(store.runs()[0].id))
    assert [(c.passed, c.feedback) for r in example.rounds for c in r.critiques] == [(False, "Lyon is wrong.")]


def test_experiments_refuse_the_human_critic(tmp_path):
    with pytest.raises(InputError, match="not in experiments"):
        ExperimentSpec.parse({"name": "h", "datasets": [{"name": "benign", "limit": 1}], "critics": [["human"]]})
    # Built past the spec's check, the critic still refuses to run outside a graph.
    spec = ExperimentSpec.parse({"name": "h", "datasets": [{"name": "benign", "limit": 1}], "critics": [["oracle"]]})
    store = SQLStore(f"sqlite:///{tmp_path / 'e.db'}")
    runner = ExperimentRunner(spec, store, FunctionLLM(lambda c: "x"), critic_factory=lambda name, llm: HumanCritic())
    with pytest.raises(InputError, match="not in experiments"):
        runner.run()


def test_redraft_run_asks_at_the_terminal(tmp_path, monkeypatch):
    use_llm(monkeypatch, ScriptedLLM(["Lyon.", "Paris."]))
    db = tmp_path / "run.db"
    args = ["run", "--critic", "human", "--prompt", "Capital of France?", "--db", str(db), "--max-rounds", "3"]
    result = CliRunner().invoke(cli.app, args, input="n\nWrong city.\ny\n\n")
    assert result.exit_code == 0, result.output
    assert "Lyon." in result.output and "your verdict" in result.output
    store = SQLStore(f"sqlite:///{db}", readonly=True)
    [example] = list(store.examples(store.runs()[0].id))
    assert [(c.passed, c.feedback) for r in example.rounds for c in r.critiques] == [
        (False, "Wrong city."),
        (True, "(no feedback)"),
    ]
    assert example.outcome is not None and example.outcome.status == "accepted"


@pytest.mark.parametrize("where", ["no person", "no checkpointer"])
def test_the_human_critic_without_a_person_or_a_checkpointer_records_no_run(tmp_path, where):
    from redraft.graphs.runs import run_prompts

    url = "sqlite://" if where == "no checkpointer" else f"sqlite:///{tmp_path / 'h.db'}"
    store = SQLStore(url)
    ask = (lambda paused: {"passed": True, "feedback": ""}) if where == "no checkpointer" else None
    with pytest.raises(InputError, match="the human critic needs a person and a checkpointer"):
        run_prompts(
            [{"prompt": "Capital of France?"}],
            llm=FunctionLLM(lambda conv: "Paris."),
            critic_names=["human"],
            config=CorrectionConfig(max_rounds=1),
            store=store,
            ask=ask,
        )
    assert store.runs() == []  # refused before anything was written
