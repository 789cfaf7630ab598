"""The ``redraft`` command line: demo, run, show, export."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from redraft.agents.base import LLM, SamplingParams
from redraft.errors import InputError, RedraftError
from redraft.graphs.config import CorrectionConfig
from redraft.graphs.state import CorrectionInput

app = typer.Typer(
    help="Agentic self-correction for LLMs: generate → critique → revise, logged to SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
export_app = typer.Typer(help="Export logged runs as training data.", no_args_is_help=True)
app.add_typer(export_app, name="export")
console = Console()

DEMO_PROMPTS = (
    "In which year did Marie Curie win her first Nobel Prize, and in which field?",
    "Who was the first person to walk on the Moon, and in what year?",
    "What is the boiling point of water at sea level in degrees Fahrenheit?",
)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A local model directory, .gguf file or cached hub id. Default: embedded SmolLM2-135M.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ...")]
DbOpt = Annotated[str, typer.Option("--db", help="SQLAlchemy URL or SQLite file path for the run log.")]
RoundsOpt = Annotated[int, typer.Option("--max-rounds", help="Most drafts per prompt (1 = critique only).")]
ModeOpt = Annotated[str, typer.Option("--mode", help="feedback | cac (Checking-as-Context).")]
TokensOpt = Annotated[int, typer.Option("--max-new-tokens", help="Token budget per draft.")]


def _db_url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


def _load_llm(model: str | None, device: str) -> LLM:
    with console.status("Loading model (the first use of the embedded model caches a fast copy, ~30 s)..."):
        if model is None:
            from redraft.agents.embedded import default_llm

            return default_llm(device=device)
        from redraft.agents.transformers_llm import TransformersLLM

        return TransformersLLM(model, device=device)


def _config(max_rounds: int, mode: str, max_new_tokens: int) -> CorrectionConfig:
    return CorrectionConfig.model_validate(
        {"max_rounds": max_rounds, "mode": mode, "generation": SamplingParams(max_new_tokens=max_new_tokens)}
    )


def _verdict(passed: bool | None) -> str:
    return {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]unknown[/]"}[passed]


def print_rounds(prompt: str, rounds: list[dict[str, Any]], status: str) -> None:
    """Print each round: the draft, then every critic's verdict and feedback."""
    console.rule(f"[bold]{prompt}")
    for r in rounds:
        title = "draft" if r["index"] == 0 else f"revision {r['index']}"
        console.print(Panel(r["draft"] or "(empty)", title=f"round {r['index']}: {title}", title_align="left"))
        for c in r["critiques"]:
            console.print(f"  {c['critic']}: {_verdict(c['passed'])}  {c['feedback'][:300]}")
    console.print(f"  status: [bold]{status}[/]")


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/] {exc}")
    raise typer.Exit(2) from exc


@contextmanager
def _checkpointer(db_url: str) -> Iterator[Any]:
    """A real LangGraph SQLite checkpointer beside a SQLite run log, so ``--resume`` can continue
    an example mid-loop. Other databases resume at example granularity only."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        yield None
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(url.database).with_suffix(".checkpoints.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


def _read_prompts(prompt: list[str] | None, input_path: Path | None) -> list[CorrectionInput]:
    items: list[CorrectionInput] = [{"prompt": p, "example_id": f"prompt-{i}"} for i, p in enumerate(prompt or [])]
    if input_path is not None:
        if not input_path.is_file():
            raise InputError(
                f"input file {input_path} does not exist; pass a JSONL file with one {{'prompt': ...}} per line"
            )
        for n, line in enumerate(input_path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{input_path}:{n} is not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise InputError(f'{input_path}:{n} needs a string field \'prompt\', e.g. {{"prompt": "..."}}')
            item: CorrectionInput = {"prompt": row["prompt"], "example_id": str(row.get("id", f"line-{n}"))}
            item["source"] = str(input_path.name)
            if isinstance(row.get("labels"), dict):
                item["labels"] = row["labels"]
            items.append(item)
    if not items:
        raise InputError("nothing to run: pass --prompt TEXT (repeatable) or --input prompts.jsonl")
    return items


def run_prompts(
    items: list[CorrectionInput],
    *,
    llm: LLM,
    critic_names: list[str],
    config: CorrectionConfig,
    db_url: str,
    resume: str | None = None,
    run_name: str | None = None,
    verbose: bool = True,
) -> str:
    """Run the correction graph over ``items``, logging to ``db_url``; return the run id."""
    from redraft.critics import make_critic
    from redraft.graphs.correction import build_graph
    from redraft.store.sql import SQLStore

    critics = [make_critic(name, llm) for name in critic_names]
    for item in items:  # validate every prompt before generating anything
        if not item["prompt"].strip():
            raise InputError(f"prompt {item.get('example_id')} is empty; every prompt needs text")
    store = SQLStore(db_url)
    done: set[str] = set()
    if resume is not None:
        run = store.run(resume)
        done = {e.key for e in store.examples(run.id) if e.outcome is not None}
        resume = run.id
    with _checkpointer(db_url) as saver:
        graph = build_graph(
            llm=llm,
            critics=critics,
            config=config,
            store=store,
            checkpointer=saver,
            run_id=resume,
            run_name=run_name,
        )
        run_id = graph_run_id(graph)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=verbose) as progress:
            task = progress.add_task("correcting", total=len(items), completed=len(done))
            for item in items:
                key = item.get("example_id", "")
                if key in done:
                    continue
                cfg: Any = {"configurable": {"thread_id": f"{run_id}/{key}"}}
                snapshot = graph.get_state(cfg) if saver is not None else None
                out = graph.invoke(None if snapshot and snapshot.next else item, cfg)
                progress.advance(task)
                if verbose:
                    progress.stop()
                    print_rounds(out["prompt"], [dict(r) for r in out["rounds"]], out.get("status", "?"))
                    progress.start()
    store.finish_run(run_id)
    return run_id


def graph_run_id(graph: Any) -> str:
    """The run id a graph records under (set by ``build_graph`` when a store is given)."""
    run_id = (graph.config or {}).get("metadata", {}).get("redraft_run_id")
    if not run_id:
        raise RuntimeError("this graph was built without a store, so it has no run id")
    return str(run_id)


@app.command()
def demo(
    db: DbOpt = "redraft.db",
    max_rounds: RoundsOpt = 3,
    mode: ModeOpt = "cac",
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: TokensOpt = 96,
) -> None:
    """Correct a few factual questions with the embedded model and log every round to SQLite."""
    try:
        config = _config(max_rounds, mode, max_new_tokens)
        llm = _load_llm(model, device)
        items: list[CorrectionInput] = [
            {"prompt": p, "example_id": f"demo-{i}", "source": "demo"} for i, p in enumerate(DEMO_PROMPTS)
        ]
        run_id = run_prompts(
            items, llm=llm, critic_names=["self-error"], config=config, db_url=_db_url(db), run_name="demo"
        )
    except (RedraftError, ValueError, KeyError) as exc:
        _fail(exc)
    console.print(f"\nrun [bold]{run_id}[/] logged to {db}. Inspect it with: redraft show {run_id[:8]} --db {db}")
    console.print(
        "[dim]SmolLM2-135M is a plumbing model: its facts and self-checks are unreliable. "
        "Point --model at a larger chat model for real corrections.[/]"
    )


@app.command()
def run(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="A prompt (repeatable).")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="JSONL with a 'prompt' field per line.")] = None,
    critic: Annotated[
        list[str] | None, typer.Option("--critic", help="Critic name (repeatable). Default: self.")
    ] = None,
    db: DbOpt = "redraft.db",
    max_rounds: RoundsOpt = 3,
    mode: ModeOpt = "feedback",
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: TokensOpt = 256,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue an interrupted run by id.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only show progress, not every round.")] = False,
) -> None:
    """Run the correction loop over prompts and log every round."""
    try:
        config = _config(max_rounds, mode, max_new_tokens)
        items = _read_prompts(prompt, input_path)
        from redraft.critics import CRITICS

        names = critic or ["self"]
        unknown = [n for n in names if n not in CRITICS]
        if unknown:
            raise InputError(f"unknown critic {unknown[0]!r}; known critics: {', '.join(sorted(CRITICS))}")
        llm = _load_llm(model, device)
        run_id = run_prompts(
            items,
            llm=llm,
            critic_names=names,
            config=config,
            db_url=_db_url(db),
            resume=resume,
            verbose=not quiet,
        )
    except (RedraftError, ValueError, KeyError) as exc:
        _fail(exc)
    console.print(f"run [bold]{run_id}[/] logged to {db}")


@app.command()
def show(
    run_id: Annotated[str | None, typer.Argument(help="Run id or a unique prefix; omit to list runs.")] = None,
    db: DbOpt = "redraft.db",
) -> None:
    """List runs, or print one run round by round."""
    from redraft.store.sql import SQLStore

    try:
        store = SQLStore(_db_url(db))
        if run_id is None:
            table = Table("run", "name", "model", "started", "ended")
            for r in store.runs():
                table.add_row(
                    r.id[:12],
                    r.name or "",
                    r.model_id,
                    f"{r.started_at:%Y-%m-%d %H:%M}",
                    f"{r.ended_at:%H:%M:%S}" if r.ended_at else "",
                )
            console.print(table)
            return
        run_row = store.run(run_id)
    except (RedraftError, KeyError) as exc:
        _fail(exc)
    console.print(f"run {run_row.id}  model={run_row.model_id}  config={json.dumps(run_row.config)}")
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


@export_app.command("dpo")
def export_dpo(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="conversational | standard (TRL dataset formats).")
    ] = "conversational",
    db: DbOpt = "redraft.db",
) -> None:
    """Export (final revision ≻ first draft) preference pairs in TRL's format."""
    from redraft.store.export import dpo_pairs, write_jsonl
    from redraft.store.sql import SQLStore

    try:
        if fmt not in ("conversational", "standard"):
            raise InputError(f"unknown format {fmt!r}; known formats: conversational, standard")
        n = write_jsonl(dpo_pairs(SQLStore(_db_url(db)), run_id, fmt=fmt), output)  # type: ignore[arg-type]
    except (RedraftError, KeyError) as exc:
        _fail(exc)
    console.print(f"wrote {n} pairs to {output}")
