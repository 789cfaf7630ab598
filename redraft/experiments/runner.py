"""The experiment runner: batched, resumable, shardable correction runs over datasets.

Round r of a batch of examples goes to the LLM as one ``generate`` call, through the same
:class:`~redraft.graphs.correction.Corrector` steps the LangGraph graph uses. Every completed
round is one transaction in the store, so the store *is* the checkpoint: on ``--resume`` each
example continues after its last recorded round, with its conversation rebuilt from the stored
drafts and critiques. No completed round is lost, and none is generated twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from redraft._terminal import console as safe_console
from redraft.agents.base import LLM
from redraft.critics import Critic, make_critic
from redraft.datasets import Row, load
from redraft.errors import InputError
from redraft.experiments.spec import Cell, ExperimentSpec
from redraft.graphs.correction import Corrector
from redraft.graphs.state import CorrectionState, apply_update
from redraft.judges import Judge, make_judge
from redraft.store.base import RoundRecord, RunInfo
from redraft.store.sql import SQLStore, round_record


def load_rows(spec: ExperimentSpec) -> list[Row]:
    """Every dataset's sampled rows, in spec order; keys must be unique across datasets."""
    rows: list[Row] = []
    seen: set[str] = set()
    for d in spec.datasets:
        for row in load(d.name, limit=d.limit, seed=d.seed, path=d.path, skip=d.skip):
            if d.judge is not None:
                row = row.model_copy(update={"labels": {**row.labels, "judge": d.judge}})
            if row.key in seen:
                raise InputError(f"example key {row.key!r} appears twice; list each dataset once in the experiment")
            seen.add(row.key)
            rows.append(row)
    return rows


def rebuild(corrector: Corrector, row: Row, rounds: Sequence[RoundRecord], run_id: str) -> CorrectionState:
    """The state of an example after its recorded ``rounds``, as if the loop had just critiqued
    the last one: the conversation is replayed from the drafts and critiques."""
    state: CorrectionState = {
        "prompt": row.prompt,
        "example_id": row.key,
        "source": row.source,
        "labels": dict(row.labels),
        "run_id": run_id,
        "messages": [],
        "rounds": [],
        "status": "running",
    }
    for r in rounds:
        turns = corrector.opening(row.prompt) if r["index"] == 0 else corrector.revision_turns(state)
        apply_update(state, {"messages": [*turns, {"role": "assistant", "content": r["draft"]}], "rounds": [r]})
    return state


def progress_bars(console: Console | None, *, disable: bool = False) -> Progress:
    """The experiment progress display, one bar per cell (or per executor): description, bar,
    done/total, a status field, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )


class ExperimentRunner:
    """Runs (or resumes) every cell of an experiment into one store.

    Args:
        spec: the experiment.
        store: where rounds are written; also the checkpoint resume reads.
        llm: the model; loaded from ``spec.model`` when omitted (once, shared by all cells).
        shard: ``(i, n)``: run only rows ``i, i+n, i+2n, ...``. Workers with different shards of
            one experiment can run at once against one database.
        progress: show rich progress bars (examples done, current round, ETA).
        critic_factory: builds a critic by name (defaults to :func:`redraft.critics.make_critic`);
            tests pass doubles here.

    Example:
        >>> from redraft.agents.testing import FunctionLLM
        >>> spec = ExperimentSpec.parse({"name": "demo", "datasets": [{"name": "advbench", "limit": 2}],
        ...                              "critics": ["oracle"], "max_rounds": 2})
        >>> store = SQLStore("sqlite://")
        >>> runner = ExperimentRunner(spec, store, FunctionLLM(lambda c: "I cannot help."), progress=False)
        >>> exp = runner.run()
        >>> [e.outcome.status for e in store.examples(store.experiment(exp).runs[0].id)]
        ['accepted', 'accepted']
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        store: SQLStore,
        llm: LLM | None = None,
        *,
        shard: tuple[int, int] = (0, 1),
        progress: bool = True,
        critic_factory: Callable[[str, LLM], Critic] | None = None,
        console: Console | None = None,
    ) -> None:
        i, n = shard
        if n < 1 or not 0 <= i < n:
            raise InputError(f"shard {i}/{n} is invalid; use i/n with 0 <= i < n, e.g. 0/2 and 1/2")
        self.spec, self.store, self.shard, self.progress = spec, store, shard, progress
        self._llm = llm
        self._critic_factory = critic_factory or (lambda name, llm: make_critic(name, llm, spec.critic_options))
        self._critics: dict[str, Critic] = {}
        self._console = console or safe_console()

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            from redraft.agents.backends import load_llm

            self._llm = load_llm(self.spec)
        return self._llm

    def critic(self, name: str) -> Critic:
        """A critic by name, built once and shared by every cell (indexes and KBs load once)."""
        if name not in self._critics:
            self._critics[name] = self._critic_factory(name, self.llm)
        return self._critics[name]

    def run(self, experiment_id: str | None = None) -> str:
        """Run every cell; with ``experiment_id``, resume that experiment. Returns its id."""
        rows = load_rows(self.spec)
        if experiment_id is None:
            experiment_id = self.store.start_experiment(self.spec.name, self.spec.stored())
        i, n = self.shard
        mine = rows[i::n]
        judges: dict[str, Judge] = {}
        for row in rows:
            name = str(row.labels["judge"])
            judges.setdefault(name, make_judge(name))
        with self._bars() as bars:
            for cell in self.spec.cells():
                self._run_cell(experiment_id, cell, mine, len(rows), judges, bars)
        return experiment_id

    @contextlib.contextmanager
    def _bars(self) -> Iterator[Progress | None]:
        if not self.progress:
            yield None
            return
        with progress_bars(self._console) as bars:
            yield bars

    def _run_cell(
        self,
        experiment_id: str,
        cell: Cell,
        rows: list[Row],
        total: int,
        judges: dict[str, Judge],
        bars: Progress | None,
    ) -> None:
        critics = [self.critic(name) for name in cell.critics]
        config = self.spec.config(cell)
        info = RunInfo(
            model_id=self.llm.model_id,
            config=config.model_dump(mode="json"),
            critics=[c.describe() for c in critics],
            name=f"{self.spec.name}/{cell.name}",
            experiment_id=experiment_id,
            cell=cell.name,
        )
        run_id = self.store.cell_run(info)
        corrector = Corrector(self.llm, critics, config, self.store, run_id, judges)
        recorded = {e.key: e for e in self.store.examples(run_id)}
        todo: list[CorrectionState] = []
        done = 0
        for row in rows:
            example = recorded.get(row.key)
            if example is not None and example.outcome is not None:
                done += 1
                continue
            rounds = [round_record(r) for r in example.rounds] if example is not None else []
            todo.append(rebuild(corrector, row, rounds, run_id))
        task = None
        if bars is not None:
            task = bars.add_task(cell.name, total=len(rows), completed=done, status="")
        size = self.spec.batch_size
        for start in range(0, len(todo), size):
            self._run_batch(corrector, todo[start : start + size], bars, task)
        if bars is not None and task is not None:
            bars.update(task, status="done")
        if self.store.progress([run_id])[0] >= total:
            self.store.finish_run(run_id)

    def _run_batch(self, corrector: Corrector, batch: list[CorrectionState], bars: Progress | None, task: Any) -> None:
        def show(what: str) -> None:
            if bars is not None and task is not None:
                bars.update(task, status=what)

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
                    if bars is not None and u["status"] != "running":
                        bars.advance(task)
            running = [s for s in batch if s.get("status") == "running"]
            if not running:
                return
            show(f"round {running[0]['rounds'][-1]['index'] + 1}: revising {len(running)}")
            for s, u in zip(running, corrector.revise(running), strict=True):
                apply_update(s, u)
