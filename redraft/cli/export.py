"""``redraft export dpo|sft``: logged runs as TRL training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from redraft._db import DEFAULT_FILE
from redraft.cli._common import DbOpt, app, cli_errors, console, group, open_store
from redraft.errors import InputError

export_app = group("Export logged runs as training data.")
app.add_typer(export_app, name="export")

FormatOpt = Annotated[str, typer.Option("--format", help="conversational | standard (TRL dataset formats).")]
DiskOpt = Annotated[
    bool, typer.Option("--save-to-disk", help="Write a datasets.save_to_disk directory instead of JSONL.")
]


def _write_rows(rows: Any, output: Path, to_disk: bool) -> int:
    from redraft.export import save_to_disk, write_jsonl

    return save_to_disk(rows, output) if to_disk else write_jsonl(rows, output)


def _check_format(fmt: str) -> None:
    if fmt not in ("conversational", "standard"):
        raise InputError(f"unknown format {fmt!r}; known formats: conversational, standard")


@export_app.command("dpo")
@cli_errors
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
    db: DbOpt = DEFAULT_FILE,
) -> None:
    """Export preference pairs in TRL's DPO format, with a provenance column."""
    from redraft.export import FlameFilter, dpo_pairs

    _check_format(fmt)
    rows = dpo_pairs(
        open_store(db, readonly=True),
        ident,
        fmt=fmt,  # type: ignore[arg-type]
        recipe=recipe,  # type: ignore[arg-type]
        judge_only=judge_only,
        flame=FlameFilter(reward=reward, guard=guard, max_gap=max_gap),
    )
    n = _write_rows(rows, output, to_disk)
    console.print(f"wrote {n} pairs to {output}")


@export_app.command("sft")
@cli_errors
def export_sft(
    ident: Annotated[str, typer.Argument(help="Run id or experiment id (or a unique prefix).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file (or directory with --save-to-disk).")],
    fmt: FormatOpt = "conversational",
    to_disk: DiskOpt = False,
    db: DbOpt = DEFAULT_FILE,
) -> None:
    """Export good final answers as TRL prompt-completion rows (judged good, or accepted)."""
    from redraft.export import sft_rows

    _check_format(fmt)
    rows = sft_rows(open_store(db, readonly=True), ident, fmt=fmt)  # type: ignore[arg-type]
    n = _write_rows(rows, output, to_disk)
    console.print(f"wrote {n} rows to {output}")
