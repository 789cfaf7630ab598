"""redraft's per-round overhead against a bare LangGraph StateGraph with the same three nodes, and
its SQL logging against LangGraph's own SqliteSaver checkpointer on that graph.

Both graphs run generate → critique → revise loops of ``--rounds`` rounds with trivial work in
every node (a scripted LLM, a critic that always fails), so the ratio is the cost of redraft's
typing, validation, state bookkeeping and (optionally) SQL logging.

    python benchmarks/overhead.py [--invocations 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import operator
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from redraft import CorrectionConfig, build_graph
from redraft.agents.testing import ScriptedLLM
from redraft.critics import Critic, Critique, DraftContext


class AlwaysFails(Critic):
    name = "fails"
    higher_is_better = True

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        return [Critique(critic=self.name, passed=False, feedback="again") for _ in items]


class BareState(TypedDict):
    prompt: str
    drafts: Annotated[list[str], operator.add]
    verdicts: Annotated[list[bool], operator.add]


def bare_graph(rounds: int, checkpointer: Any = None) -> Any:
    def generate(state: BareState) -> dict[str, Any]:
        return {"drafts": ["draft"]}

    def critique(state: BareState) -> dict[str, Any]:
        return {"verdicts": [False]}

    def revise(state: BareState) -> dict[str, Any]:
        return {"drafts": ["draft"]}

    def route(state: BareState) -> Literal["revise", "__end__"]:
        return "revise" if len(state["drafts"]) < rounds else "__end__"

    g = StateGraph(BareState)
    g.add_node("generate", generate)
    g.add_node("critique", critique)
    g.add_node("revise", revise)
    g.add_edge(START, "generate")
    g.add_edge("generate", "critique")
    g.add_conditional_edges("critique", route, {"revise": "revise", END: END})
    g.add_edge("revise", "critique")
    return g.compile(checkpointer=checkpointer)


def redraft_graph(rounds: int, invocations: int, store: str | None) -> Any:
    llm = ScriptedLLM([lambda conv: "draft"] * (rounds * invocations * 2))
    config = CorrectionConfig(max_rounds=rounds, stop_on_no_change=False)
    return build_graph(llm=llm, critics=[AlwaysFails()], config=config, store=store)


def per_round_ms(invoke: Callable[[int], Any], invocations: int, rounds: int) -> float:
    for i in range(min(20, invocations)):  # warm-up
        invoke(-1 - i)
    times = []
    for i in range(invocations):
        start = time.perf_counter()
        invoke(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invocations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, r = args.invocations, args.rounds

    bare = bare_graph(r)
    base = per_round_ms(lambda i: bare.invoke({"prompt": f"p{i}", "drafts": [], "verdicts": []}), n, r)
    plain = redraft_graph(r, n + 20, None)
    off = per_round_ms(lambda i: plain.invoke({"prompt": f"p{i}"}), n, r)
    with tempfile.TemporaryDirectory() as tmp:
        logged = redraft_graph(r, n + 20, f"sqlite:///{Path(tmp) / 'bench.db'}")
        on = per_round_ms(lambda i: logged.invoke({"prompt": f"p{i}", "example_id": str(i)}), n, r)
        # LangGraph's own persistence on the same loop: its SqliteSaver on a file with the settings
        # redraft's store uses (WAL, synchronous=NORMAL), one thread per invocation.
        conn = sqlite3.connect(Path(tmp) / "checkpoints.db", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        saved = bare_graph(r, SqliteSaver(conn))

        def checkpointed(i: int) -> Any:
            config: Any = {"configurable": {"thread_id": str(i)}}
            return saved.invoke({"prompt": f"p{i}", "drafts": [], "verdicts": []}, config)

        lg = per_round_ms(checkpointed, n, r)
        conn.close()

    print(f"median per round over {n} invocations x {r} rounds")
    print(f"  bare LangGraph StateGraph (baseline)  {base:8.3f} ms")
    print(f"  redraft, store off                    {off:8.3f} ms   {off / base:5.2f}x baseline")
    print(f"  redraft, SQLite store on              {on:8.3f} ms   {on / base:5.2f}x baseline")
    print(f"  bare LangGraph + its SqliteSaver      {lg:8.3f} ms   {lg / base:5.2f}x baseline")
    print(f"redraft with its SQLite store vs LangGraph with its SqliteSaver: {on / lg:.2f}x the time per round")


if __name__ == "__main__":
    main()
