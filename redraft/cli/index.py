"""``redraft index build|stats|verify|query|calibrate``: suffix indexes over a belief corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from redraft.cli._common import Bars, app, cli_errors, console, group, resolve_named
from redraft.errors import InputError

index_app = group("Build and query suffix indexes over a belief corpus.")
app.add_typer(index_app, name="index")


def _open_index(path: Path) -> Any:
    from redraft.provenance.index import SuffixIndex

    return SuffixIndex.load(path)


def _load_tokenizer(spec: str) -> Any:
    """``--tokenizer``: ``bytes``, a named model (``embedded``; resolved here, at the edge) or a
    path / hub id."""
    from redraft.provenance.tokenizers import load_tokenizer

    return load_tokenizer(resolve_named(spec))


def _index_tokenizer(index: Any, tokenizer: str | None) -> Any:
    from redraft.provenance.tokenizers import ByteTokenizer

    built = index.header.tokenizer
    if built.kind == "bytes":
        return ByteTokenizer()
    tok = _load_tokenizer(tokenizer or built.name)
    index.check_tokenizer(tok.info, "the given")
    return tok


@index_app.command("build")
@cli_errors
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
    with warnings.catch_warnings(record=True) as caught, Bars(transient=True) as bars:
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
            progress=bars,
        )
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    console.print(
        f"built {out}: {header.n_docs:,} docs, {header.n_tokens:,} tokens, {len(header.shards)} shard(s), "
        f"{size / max(1, header.n_tokens):.2f} bytes/token, {header.build['seconds']:.1f} s"
    )


@index_app.command("stats")
@cli_errors
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
@cli_errors
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
@cli_errors
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
@cli_errors
def index_calibrate(
    path: Annotated[Path, typer.Argument(help="An index directory.")],
    labelled: Annotated[Path, typer.Argument(help='JSONL: {"text": ..., "label": "safe" | "refuse"} per line.')],
    target_fpr: Annotated[float, typer.Option(help="Highest acceptable false-positive rate on safe texts.")] = 0.05,
    variant: Annotated[str, typer.Option(help="sum | density | max")] = "sum",
    min_len: Annotated[int, typer.Option(help="Minimum span length in tokens.")] = 8,
) -> None:
    """Pick the TraceShield threshold from labelled drafts at a target false-positive rate."""
    from redraft._jsonl import read_objects
    from redraft.provenance.bci import calibrate_threshold

    if variant not in ("sum", "density", "max"):
        raise InputError(f"unknown variant {variant!r}; known variants: sum, density, max")
    example = '{"text": "...", "label": "safe"}'
    texts, flagged = [], []
    for n, row in read_objects(labelled, "text", example):  # n counts every line, blank ones too
        if row.get("label") not in ("safe", "refuse"):
            raise InputError(f"{labelled}:{n} needs a 'label' of 'safe' or 'refuse', e.g. {example}")
        texts.append(row["text"])
        flagged.append(row["label"] == "refuse")
    index = _open_index(path)
    choice = calibrate_threshold(
        index,
        _index_tokenizer(index, None),
        texts,
        flagged,
        variant=variant,  # type: ignore[arg-type]  # checked above
        min_len=min_len,
        target_fpr=target_fpr,
    )
    table = Table("threshold (nats)", "FPR", "TPR")
    for p in choice.curve:
        table.add_row(f"{p.threshold:.2f}", f"{p.fpr:.3f}", f"{p.tpr:.3f}")
    console.print(table)
    chosen = choice.chosen
    console.print(
        f"threshold {chosen.threshold:.2f} ({variant}): FPR {chosen.fpr:.3f}, TPR {chosen.tpr:.3f} "
        f"on {choice.n_safe} safe / {choice.n_flagged} refuse examples"
    )
