"""What every command shares: the app, the console, option types, loading a model, and the
one place redraft's errors become messages."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Task as RichTask
from rich.text import Text

from redraft import _progress
from redraft._db import DB_ENV, db_url
from redraft._packages import EMBEDDED
from redraft.cli._terminal import console as safe_console
from redraft.critics import CriticOptions
from redraft.errors import RedraftError, invalid_fields

if TYPE_CHECKING:  # loaded by the functions that use them: a command's help needs none
    from redraft.agents.backends import BackendSpec
    from redraft.agents.base import LLM
    from redraft.corrections.config import CorrectionConfig
    from redraft.store.sql import SQLStore


def group(help_text: str) -> typer.Typer:
    """A command group. Help text is shown as written: with rich markup on, "redraft[ray]"
    loses its "[ray]" (read as a style tag)."""
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)


P = ParamSpec("P")
R = TypeVar("R")

app = group("Agentic self-correction for LLMs: generate → critique → revise, logged to SQL.")
console = safe_console()

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help=(
            "A named model (embedded, qwen2.5-coder-1.5b), a local model directory, .gguf file or cached hub id. "
            "Default: embedded SmolLM2-135M."
        ),
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ...")]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="transformers (local) | vllm (in-process, GPU) | openai (HTTP server).")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="For --backend openai, e.g. http://127.0.0.1:8000/v1.")
]
DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        help="SQLAlchemy URL or SQLite file path of the run log (or set REDRAFT_DB, which keeps a password off the "
        "command line).",
    ),
]


def critic_option(field: str) -> Any:
    """A ``redraft run`` option for a :class:`CriticOptions` field: its flag, help and default
    come from the field, and an option not given is not passed (the field's default applies)."""
    info = CriticOptions.model_fields[field]
    default = "" if info.default is None else f" [default: {info.default}]"
    return typer.Option(
        f"--{field.replace('_', '-')}",
        help=f"{(info.description or '').replace('``', '')}{default}",
        show_default=False,
    )


def critic_options(**given: Any) -> CriticOptions:
    try:
        return CriticOptions(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise invalid_fields("the critic options", exc) from exc


def open_store(db: str, *, readonly: bool = False) -> SQLStore:
    """The run log a ``--db`` value names (SQLAlchemy loads here, when a command runs: never for
    ``--help`` or a usage error)."""
    from redraft.store.sql import SQLStore

    return SQLStore(db_url(db), readonly=readonly)


def backend_spec(backend: str, model: str | None, device: str, base_url: str | None) -> BackendSpec:
    """The validated model choice of --backend/--model/--device/--base-url."""
    from redraft.agents.backends import BackendSpec

    try:
        return BackendSpec.model_validate(
            {"backend": backend, "model": model or EMBEDDED, "device": device, "base_url": base_url}
        )
    except ValidationError as exc:
        raise invalid_fields("the model options", exc) from exc


def load_model(spec: BackendSpec) -> LLM:
    from redraft.agents.backends import NAMED, load_llm

    what = spec.model
    if spec.model in NAMED:
        from redraft.agents.embedded import NAMED_MODELS

        what = f"{spec.model} (its first use caches a fast copy, {NAMED_MODELS[spec.model].first_load})"
    with console.status(f"Loading {what} ({spec.backend})..."):
        return load_llm(spec)


LOOP_FLAGS: dict[str, tuple[str, ...]] = {
    "max_rounds": ("max_rounds",),
    "mode": ("mode",),
    "constrain": ("constrain",),
    "best_of": ("best_of",),
    "max_new_tokens": ("generation", "max_new_tokens"),
}
"""The :class:`~redraft.corrections.config.CorrectionConfig` fields the command line sets, by flag
(``--max-new-tokens`` is ``generation.max_new_tokens``). Help and defaults come from the fields."""


def _nested(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flag values as a :class:`CorrectionConfig` mapping (``{"generation": {"max_new_tokens": 96}}``)."""
    out: dict[str, Any] = {}
    for flag, value in flags.items():
        *parents, leaf = LOOP_FLAGS[flag]
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def loop_option(flag: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The option for a loop flag of :data:`LOOP_FLAGS`: its help is the field's description and
    its default the field's (after ``overrides``, a command's own values); a flag not given is not
    passed, so the library's default applies and is written only in ``CorrectionConfig``."""
    from redraft.agents.base import SamplingParams
    from redraft.corrections.config import CorrectionConfig
    from redraft.corrections.strategies import strategies_help

    *parents, leaf = LOOP_FLAGS[flag]
    model: type[BaseModel] = SamplingParams if parents else CorrectionConfig
    value: Any = CorrectionConfig.model_validate(overrides or {})
    for key in LOOP_FLAGS[flag]:
        value = getattr(value, key)
    text = _first_sentence(model.model_fields[leaf].description or "")
    if flag == "mode":
        text = f"The revise strategy: {strategies_help()}."
    names = f"--{flag.replace('_', '-')}"
    if isinstance(value, bool):
        names += f"/--no-{flag.replace('_', '-')}"
    return typer.Option(names, help=f"{text} [default: {value}]", show_default=False)


def _first_sentence(doc: str) -> str:
    """A field's description as a flag's help: its first sentence, with reST roles and literals
    read as plain text (``:class:`~a.b.SpanVeto``` → SpanVeto)."""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([\w]+)`", r"\1", " ".join(doc.split())).replace("``", "")
    end = re.search(r"(?<=[a-z0-9)])\.(?=\s|$)", text)
    return text[: end.end()] if end else text


def loop_config(overrides: Mapping[str, Any] | None = None, **flags: Any) -> CorrectionConfig:
    """The loop configuration of a command: ``overrides`` (a command's own defaults), then the
    flags given (``None``: not given)."""
    from redraft.corrections.config import CorrectionConfig

    given = _nested({k: v for k, v in flags.items() if v is not None})
    merged = dict(overrides or {})
    for key, value in given.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    try:
        return CorrectionConfig.model_validate(merged)
    except ValidationError as exc:
        raise invalid_fields("the loop options", exc) from exc


def cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """The one place redraft's errors become CLI messages: the error, and exit code 2. A bug
    (any other exception) keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (RedraftError, OSError) as exc:  # OSError: a file or port the user named
            fail(exc)

    return wrapper


def fail(exc: Exception) -> NoReturn:
    # Messages carry brackets ("redraft[vllm]", "labels['judge']") that rich would read as markup.
    console.print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2) from exc


def resolve_named(spec: str) -> str:
    """A named model (``embedded``, ...) as its cached model directory; anything else unchanged."""
    from redraft.agents.backends import NAMED

    if spec not in NAMED:
        return spec
    from redraft.agents.embedded import named_model_dir

    return str(named_model_dir(spec))


class _Count(ProgressColumn):
    """done/total, in bytes for a task that counts bytes."""

    def render(self, task: RichTask) -> Text:
        done, total = int(task.completed), None if task.total is None else int(task.total)
        if task.fields.get("unit") == "bytes":
            return Text(f"{done / 1e6:,.1f}/{'?' if total is None else f'{total / 1e6:,.1f}'} MB")
        return Text(f"{done}/{'?' if total is None else total}")


class Bars:
    """Draws a job's :class:`~redraft._progress.Progress` reports as rich bars, one per task;
    notes become lines when the output is not a terminal (a log file keeps them).

    Example:
        >>> with Bars(enabled=False) as bars:
        ...     bars(_progress.Progress("cell", done=1, total=4, status="round 1"))
    """

    def __init__(self, *, enabled: bool = True, transient: bool = False) -> None:
        self._bars = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            _Count(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=transient,
        )
        self._tasks: dict[str, Any] = {}
        self.enabled = enabled

    def __enter__(self) -> Bars:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def __call__(self, p: _progress.Progress) -> None:
        status = escape(p.status)
        if p.task not in self._tasks:
            self._tasks[p.task] = self._bars.add_task(
                escape(p.task), total=p.total, completed=p.done, status=status, unit=p.unit
            )
        else:
            self._bars.update(self._tasks[p.task], total=p.total, completed=p.done, status=status)
        if p.note and self.enabled and not console.is_terminal:
            console.print(escape(p.note))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop drawing while something else prints or asks at the terminal."""
        self._bars.stop()
        try:
            yield
        finally:
            self._bars.start()
