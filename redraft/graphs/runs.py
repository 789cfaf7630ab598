"""Run the correction graph over many prompts as one run: validated up front, logged to a store,
resumable after a crash.

``redraft run`` and ``redraft demo`` are this function plus printing. With a SQLite store the
LangGraph checkpoints live beside the run log (:func:`checkpointer_for`), so ``resume`` continues
an example mid-loop; with other databases it continues at example granularity (finished examples
are skipped, unfinished ones start again; rounds are idempotent in the store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.types import Command
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from redraft.agents.base import LLM
from redraft.critics import CriticOptions, make_critic
from redraft.errors import InputError
from redraft.graphs.config import CorrectionConfig
from redraft.graphs.correction import Corrector, build_graph
from redraft.graphs.state import CorrectionInput
from redraft.store.sql import SQLStore


@contextmanager
def checkpointer_for(store_url: str) -> Iterator[Any]:
    """The LangGraph checkpointer (strict JSON) of a run log: a SQLite file beside a SQLite one,
    tables in the same database for PostgreSQL; ``None`` for an in-memory SQLite database, which
    resumes at example granularity."""
    from sqlalchemy.engine import make_url

    from redraft.graphs.checkpoint import checkpoint_path, postgres_checkpointer, sqlite_checkpointer

    url = make_url(store_url)
    if url.get_backend_name() == "postgresql":
        with postgres_checkpointer(store_url) as pg:
            yield pg
    elif url.get_backend_name() == "sqlite" and url.database:
        with sqlite_checkpointer(checkpoint_path(url.database)) as saver:
            yield saver
    else:
        yield None


def graph_run_id(graph: Any) -> str:
    """The run id a graph records under (set by ``build_graph`` when a store is given)."""
    run_id = (graph.config or {}).get("metadata", {}).get("redraft_run_id")
    if not run_id:
        raise RuntimeError("this graph was built without a store, so it has no run id")
    return str(run_id)


def run_prompts(
    items: list[CorrectionInput],
    *,
    llm: LLM,
    critic_names: list[str],
    config: CorrectionConfig,
    store: SQLStore,
    critic_options: CriticOptions | None = None,
    resume: str | None = None,
    run_name: str | None = None,
    console: Console | None = None,
    on_example: Callable[[dict[str, Any]], None] | None = None,
    ask: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> str:
    """Run the correction graph over ``items``, logging to ``store``; return the run id.

    Every prompt is checked (empty, too long for the model's context) before anything is
    generated. ``resume`` continues that run. ``console`` shows a progress bar and, if the run
    stops, the command that continues it; ``on_example`` sees each finished example's state.
    ``ask`` answers a graph paused by the ``human`` critic: it gets the pause's value (prompt,
    draft, round) and returns a :class:`~redraft.critics.HumanVerdict` as a dict.
    """
    critics = [make_critic(name, llm, critic_options) for name in critic_names]
    check = Corrector(llm, [], config)
    for item in items:
        try:
            check.opening(item["prompt"])
        except InputError as exc:
            raise InputError(f"prompt {item.get('example_id')}: {exc}") from exc
    done: set[str] = set()
    if resume is not None:
        run = store.run(resume)
        done = {e.key for e in store.examples(run.id) if e.outcome is not None}
        resume = run.id
    with checkpointer_for(store.url) as saver:
        graph = build_graph(
            llm=llm, critics=critics, config=config, store=store, checkpointer=saver, run_id=resume, run_name=run_name
        )
        run_id = graph_run_id(graph)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(
                *columns,
                TimeRemainingColumn(),
                console=console,
                transient=on_example is not None,
                disable=console is None,
            ) as progress:
                task = progress.add_task("correcting", total=len(items), completed=len(done))
                for item in items:
                    key = item.get("example_id", "")
                    if key in done:
                        continue
                    cfg: Any = {"configurable": {"thread_id": f"{run_id}/{key}"}}
                    snapshot = graph.get_state(cfg) if saver is not None else None
                    out = graph.invoke(None if snapshot and snapshot.next else item, cfg)
                    while out.get("__interrupt__"):  # the human critic paused the graph
                        if ask is None or saver is None:
                            raise InputError(
                                "the human critic needs a person and a checkpointer: run it with `redraft run "
                                "--critic human` at a terminal, on a SQLite run log"
                            )
                        progress.stop()
                        answer = ask(out["__interrupt__"][0].value)
                        progress.start()
                        out = graph.invoke(Command(resume=answer), cfg)
                    progress.advance(task)
                    if on_example is not None:
                        progress.stop()
                        on_example(out)
                        progress.start()
        except BaseException:
            # Every finished round is logged; say how to continue instead of leaving an anonymous run.
            if console is not None:
                console.print(f"[yellow]run {run_id} stopped before the end; continue it with --resume {run_id[:8]}[/]")
            raise
    store.finish_run(run_id)
    return run_id
