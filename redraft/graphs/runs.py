"""The one driver behind ``redraft run``, ``redraft demo`` and every experiment cell.

:func:`drive` sends round r of a batch of examples to the LLM as one ``generate`` call, through
the same :class:`~redraft.graphs.correction.Corrector` steps the LangGraph graph uses. Every
completed round is one transaction in the store, so the store *is* the checkpoint: on resume
each example continues after its last recorded round, its conversation rebuilt from the stored
drafts and critiques (:func:`resume_states`). No completed round is lost, and none is
generated twice.

One exception: the ``human`` critic pauses the loop for a person (LangGraph's ``interrupt``),
and a pause lives in a LangGraph checkpoint. Runs with it go through the compiled graph with
the checkpointer beside the run log (:func:`checkpointer_for`), which resumes mid-round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from langgraph.types import Command

from redraft._progress import Progress, Reporter, reporter
from redraft._text import clip
from redraft.agents.base import LLM
from redraft.corrections.config import DEFAULT_BATCH_SIZE, CorrectionConfig
from redraft.critics import CriticOptions, make_critic
from redraft.datasets import Row
from redraft.errors import InputError
from redraft.graphs.correction import build_graph
from redraft.graphs.state import CorrectionInput, CorrectionState, apply_update
from redraft.graphs.steps import Corrector, check_prompt, new_run
from redraft.judges import Judge, make_judge
from redraft.store.base import RoundRecord, RunInfo
from redraft.store.sql import SQLStore, round_record


@contextmanager
def checkpointer_for(store_url: str) -> Iterator[Any]:
    """The LangGraph checkpointer (strict JSON) of a run log: a SQLite file beside a SQLite one,
    tables in the same database for PostgreSQL; ``None`` for an in-memory SQLite database."""
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


def as_input(row: Row) -> CorrectionInput:
    """A dataset row as the loop's input."""
    return {"prompt": row.prompt, "example_id": row.key, "source": row.source, "labels": dict(row.labels)}


def rebuild(corrector: Corrector, item: CorrectionInput, rounds: Sequence[RoundRecord], run_id: str) -> CorrectionState:
    """The state of an example after its recorded ``rounds``, as if the loop had just critiqued
    the last one: the conversation is replayed from the drafts and critiques."""
    state: CorrectionState = {
        "prompt": item["prompt"],
        "example_id": item.get("example_id", ""),
        "labels": dict(item.get("labels") or {}),
        "run_id": run_id,
        "messages": [],
        "rounds": [],
        "status": "running",
    }
    if "source" in item:
        state["source"] = item["source"]
    for r in rounds:
        turns = corrector.opening(item["prompt"]) if r["index"] == 0 else corrector.revision_turns(state)
        apply_update(state, {"messages": [*turns, {"role": "assistant", "content": r["draft"]}], "rounds": [r]})
    return state


def resume_states(
    corrector: Corrector, store: SQLStore, run_id: str, items: Sequence[CorrectionInput]
) -> tuple[list[CorrectionState], int]:
    """The examples of ``items`` that ``run_id`` has not finished, each rebuilt after its
    recorded rounds, and how many it has finished."""
    recorded = recorded_examples(store, run_id, items)
    todo: list[CorrectionState] = []
    done = 0
    for item in items:
        example = recorded.get(item.get("example_id", ""))
        if example is not None and example.outcome is not None:
            done += 1
            continue
        rounds = [round_record(r) for r in example.rounds] if example is not None else []
        todo.append(rebuild(corrector, item, rounds, run_id))
    return todo, done


def recorded_examples(store: SQLStore, run_id: str, items: Sequence[CorrectionInput]) -> dict[str, Any]:
    """The examples ``run_id`` has recorded, by key, once each item's prompt is checked against the
    one recorded under its key: a resumed run continues the same prompts or refuses, naming the key
    (else a finished key would skip a different prompt, and new rounds would land under an old one)."""
    recorded = {e.key: e for e in store.examples(run_id)}
    for item in items:
        example = recorded.get(item.get("example_id", ""))
        if example is not None and example.prompt != item["prompt"]:
            raise InputError(
                f"cannot resume run {run_id[:8]}: example {item['example_id']!r} was recorded for the prompt "
                f"{clip(example.prompt)!r}, and this input gives it {clip(item['prompt'])!r}; resume with the input "
                "the run started with, or start a new run"
            )
    return recorded


def check_resumable(store: SQLStore, resume: str, expected: RunInfo) -> str:
    """The id of run ``resume`` (a unique prefix is enough), once its model, loop configuration and
    critics are checked against ``expected``: a resumed run continues the run it names, or refuses,
    naming what differs.

    Example:
        >>> store = SQLStore("sqlite://")
        >>> run_id = store.start_run(RunInfo(model_id="m", config={"max_rounds": 3}, critics=[]))
        >>> check_resumable(store, run_id[:8], RunInfo(model_id="m", config={"max_rounds": 3}, critics=[])) == run_id
        True
        >>> try:
        ...     check_resumable(store, run_id[:8], RunInfo(model_id="m", config={"max_rounds": 2}, critics=[]))
        ... except InputError as exc:
        ...     print(str(exc).split(". ")[0])
        cannot resume run ...: it ran with config max_rounds=3, and this one asks for max_rounds=2
    """
    run = store.run(resume)
    stored = RunInfo(model_id=run.model_id, config=run.config, critics=run.critics)
    differences = []
    if stored.model_id != expected.model_id:
        differences.append(f"model {stored.model_id!r}, and this one asks for {expected.model_id!r}")
    changed = sorted(
        k for k in stored.config.keys() | expected.config.keys() if stored.config.get(k) != expected.config.get(k)
    )
    if changed:
        was = ", ".join(f"{k}={stored.config.get(k)!r}" for k in changed)
        now = ", ".join(f"{k}={expected.config.get(k)!r}" for k in changed)
        differences.append(f"config {was}, and this one asks for {now}")
    if stored.critics != expected.critics:
        names = [c.get("name") for c in stored.critics], [c.get("name") for c in expected.critics]
        detail = f"{names[0]}, and this one asks for {names[1]}" if names[0] != names[1] else "other settings"
        differences.append(f"critics {detail}")
    if differences:
        raise InputError(
            f"cannot resume run {run.id[:8]}: it ran with {'; with '.join(differences)}. Resume with the options it "
            "started with (`redraft show` lists them), or start a new run"
        )
    return run.id


def judges_for(items: Sequence[CorrectionInput]) -> dict[str, Judge]:
    """One judge per name that an item's ``labels["judge"]`` gives (unknown names fail here,
    before anything is generated)."""
    judges: dict[str, Judge] = {}
    for item in items:
        name = (item.get("labels") or {}).get("judge")
        if isinstance(name, str) and name not in judges:
            judges[name] = make_judge(name)
    return judges


def drive(
    corrector: Corrector,
    states: Sequence[CorrectionState],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    task: str = "correcting",
    total: int | None = None,
    done: int = 0,
    progress: Reporter | None = None,
    on_example: Callable[[CorrectionState], None] | None = None,
) -> None:
    """Run ``states`` to the end of their loops, ``batch_size`` at a time, in place.

    ``progress`` hears ``task`` advance from ``done`` towards ``total`` (default: ``done`` plus
    the states) with what the batch is doing; ``on_example`` sees each example once it ends.
    """
    report = reporter(progress)
    total = done + len(states) if total is None else total
    finished = done

    def show(status: str) -> None:
        report(Progress(task, finished, total, status))

    for start in range(0, len(states), batch_size):
        batch = states[start : start + batch_size]
        fresh = [s for s in batch if not s["rounds"]]
        if fresh:
            show(f"round 0: drafting {len(fresh)}")
            for s, u in zip(fresh, corrector.draft(fresh), strict=True):
                apply_update(s, u)
        while True:
            pending = [s for s in batch if s.get("pending")]
            if pending:
                show(f"round {pending[0]['pending']['index']}: critiquing {len(pending)}")  # type: ignore[index]
                for s, u in zip(pending, corrector.critique(pending), strict=True):
                    apply_update(s, u)
                    if u["status"] != "running":
                        finished += 1
                        if on_example is not None:
                            on_example(s)
            running = [s for s in batch if s.get("status") == "running"]
            if not running:
                break
            show(f"round {running[0]['rounds'][-1]['index'] + 1}: revising {len(running)}")
            for s, u in zip(running, corrector.revise(running), strict=True):
                apply_update(s, u)
    show("done")


def run_prompts(
    items: Sequence[CorrectionInput],
    *,
    llm: LLM,
    critic_names: list[str],
    config: CorrectionConfig,
    store: SQLStore,
    critic_options: CriticOptions | None = None,
    resume: str | None = None,
    run_name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Reporter | None = None,
    on_run: Callable[[str], None] | None = None,
    on_example: Callable[[CorrectionState], None] | None = None,
    ask: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> str:
    """Run the correction loop over ``items`` as one run logged to ``store``; return its id.

    Every prompt is checked (empty, too long for the model's context) before anything is
    generated or recorded. Items whose ``labels["judge"]`` names a judge get every draft
    labelled, so the run measures critic accuracy. ``resume`` continues that run: finished
    examples are skipped, unfinished ones continue after their last recorded round.
    ``on_run`` hears the run id as soon as it exists (to say how to resume it if the run stops);
    ``on_example`` sees each finished example's state. ``ask`` answers a loop paused by the
    ``human`` critic: it gets the pause's value (prompt, draft, round) and returns a
    :class:`~redraft.critics.HumanVerdict` as a dict.

    Example:
        >>> from redraft.agents.testing import FunctionLLM
        >>> store = SQLStore("sqlite://")
        >>> run_id = run_prompts([{"prompt": "Capital of France?", "example_id": "fr"}],
        ...     llm=FunctionLLM(lambda conv: "Paris."), critic_names=[], config=CorrectionConfig(), store=store)
        >>> [(e.key, e.outcome.status) for e in store.examples(run_id)]
        [('fr', 'accepted')]
    """
    items = [item if item.get("example_id") else {**item, "example_id": f"prompt-{i}"} for i, item in enumerate(items)]
    twice = sorted(k for k, n in Counter(item["example_id"] for item in items).items() if n > 1)
    if twice:
        raise InputError(f"example ids {twice} appear more than once; give every prompt its own id")
    for item in items:
        try:
            check_prompt(llm, config, item["prompt"])
        except InputError as exc:
            raise InputError(f"prompt {item['example_id']}: {exc}") from exc
    judges = judges_for(items)
    critics = [make_critic(name, llm, critic_options) for name in critic_names]
    human = any(c.name == "human" for c in critics)
    with checkpointer_for(store.url) if human else nullcontext() as saver:
        if human and (ask is None or saver is None):  # checked before a run is recorded
            raise InputError(
                "the human critic needs a person and a checkpointer: run it with `redraft run --critic human` "
                "at a terminal, on a SQLite or PostgreSQL run log"
            )
        info = new_run(llm, critics, config, name=run_name)
        if resume is not None:
            run_id = check_resumable(store, resume, info)
            if human:  # the batched path checks the prompts in resume_states, before it generates
                recorded_examples(store, run_id, items)
        else:
            run_id = store.start_run(info)
        if on_run is not None:
            on_run(run_id)
        if human and ask is not None:
            graph = build_graph(
                llm=llm, critics=critics, config=config, store=store, checkpointer=saver, run_id=run_id, judges=judges
            )
            _run_paused(graph, items, store, run_id, progress, on_example, ask)
        else:
            corrector = Corrector(llm, critics, config, store, run_id, judges)
            todo, done = resume_states(corrector, store, run_id, items)
            drive(
                corrector,
                todo,
                batch_size=batch_size,
                total=len(items),
                done=done,
                progress=progress,
                on_example=on_example,
            )
    store.finish_run(run_id)
    return run_id


def _run_paused(
    graph: Any,
    items: Sequence[CorrectionInput],
    store: SQLStore,
    run_id: str,
    progress: Reporter | None,
    on_example: Callable[[CorrectionState], None] | None,
    ask: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """One example at a time through a graph with a checkpointer, answering each pause with ``ask``."""
    report = reporter(progress)
    finished = {e.key for e in store.examples(run_id) if e.outcome is not None}
    done = len(finished)
    for item in items:
        if item["example_id"] in finished:
            continue
        report(Progress("correcting", done, len(items)))
        cfg: Any = {"configurable": {"thread_id": f"{run_id}/{item['example_id']}"}}
        snapshot = graph.get_state(cfg)
        out = graph.invoke(None if snapshot.next else item, cfg)
        while out.get("__interrupt__"):  # the human critic paused the graph
            out = graph.invoke(Command(resume=ask(out["__interrupt__"][0].value)), cfg)
        done += 1
        if on_example is not None:
            on_example(out)
    report(Progress("correcting", done, len(items), "done"))
