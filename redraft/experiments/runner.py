"""The experiment runner: every cell of an experiment through the one driver
(:func:`redraft.graphs.runs.drive`), into one store that is also the checkpoint; resumable and
shardable.
"""

from __future__ import annotations

from collections.abc import Callable

from redraft._progress import Reporter
from redraft.agents.base import LLM
from redraft.critics import Critic, make_critic
from redraft.datasets import Row, load
from redraft.errors import InputError
from redraft.experiments.spec import Cell, ExperimentSpec
from redraft.graphs.runs import as_input, drive, judges_for, resume_states
from redraft.graphs.state import CorrectionInput
from redraft.graphs.steps import Corrector, new_run
from redraft.judges import Judge
from redraft.store.sql import SQLStore


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


class ExperimentRunner:
    """Runs (or resumes) every cell of an experiment into one store.

    Args:
        spec: the experiment.
        store: where rounds are written; also the checkpoint resume reads.
        llm: the model; loaded from ``spec.model`` when omitted (once, shared by all cells).
        shard: ``(i, n)``: run only rows ``i, i+n, i+2n, ...``. Workers with different shards of
            one experiment can run at once against one database.
        progress: hears each cell's progress (one task per cell: examples done, current round).
        critic_factory: builds a critic by name (defaults to :func:`redraft.critics.make_critic`);
            tests pass doubles here.

    Example:
        >>> from redraft.agents.testing import FunctionLLM
        >>> spec = ExperimentSpec.parse({"name": "demo", "datasets": [{"name": "advbench", "limit": 2}],
        ...                              "critics": ["oracle"], "max_rounds": 2})
        >>> store = SQLStore("sqlite://")
        >>> runner = ExperimentRunner(spec, store, FunctionLLM(lambda c: "I cannot help."))
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
        progress: Reporter | None = None,
        critic_factory: Callable[[str, LLM], Critic] | None = None,
    ) -> None:
        i, n = shard
        if n < 1 or not 0 <= i < n:
            raise InputError(f"shard {i}/{n} is invalid; use i/n with 0 <= i < n, e.g. 0/2 and 1/2")
        self.spec, self.store, self.shard, self.progress = spec, store, shard, progress
        self._llm = llm
        self._critic_factory = critic_factory or (lambda name, llm: make_critic(name, llm, spec.critic_options))
        self._critics: dict[str, Critic] = {}

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
        items = [as_input(row) for row in rows]
        mine = items[i::n]
        judges = judges_for(items)
        for cell in self.spec.cells():
            self._run_cell(experiment_id, cell, mine, len(rows), judges)
        return experiment_id

    def _run_cell(
        self, experiment_id: str, cell: Cell, items: list[CorrectionInput], total: int, judges: dict[str, Judge]
    ) -> None:
        critics = [self.critic(name) for name in cell.critics]
        config = self.spec.config(cell)
        info = new_run(
            self.llm, critics, config, name=f"{self.spec.name}/{cell.name}", experiment_id=experiment_id, cell=cell.name
        )
        run_id = self.store.cell_run(info)
        corrector = Corrector(self.llm, critics, config, self.store, run_id, judges)
        todo, done = resume_states(corrector, self.store, run_id, items)
        drive(
            corrector,
            todo,
            batch_size=self.spec.batch_size,
            task=cell.name,
            total=len(items),
            done=done,
            progress=self.progress,
        )
        if self.store.progress([run_id])[0] >= total:
            self.store.finish_run(run_id)
