"""``redraft train dpo`` and ``redraft verifier train|export``: training on what the runs logged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from redraft.cli._common import Bars, DeviceOpt, app, cli_errors, console, group, resolve_named
from redraft.errors import InputError

train_app = group("Train on exported pairs (needs redraft[train]).")
app.add_typer(train_app, name="train")


@train_app.command("dpo")
@cli_errors
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
        resolve_named(model),
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


verifier_app = group("The factuality critic's default verifier.")
app.add_typer(verifier_app, name="verifier")


@verifier_app.command("train")
@cli_errors
def verifier_train(
    per_source: Annotated[int, typer.Option(help="Training examples per data source.")] = 12000,
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 2,
    swaps: Annotated[
        int | None, typer.Option(min=0, help="Wikipedia swap pairs in the training data (default: the recipe's).")
    ] = None,
    unknowns: Annotated[
        int,
        typer.Option(
            min=0,
            help="'Not enough evidence' claims for a three-class verifier (3000 was tried); 0, the shipped recipe, "
            "trains two classes.",
        ),
    ] = 0,
) -> None:
    """Rebuild the default verifier from the packaged MiniLM, cache it, print held-out accuracy.

    redraft ships this verifier already trained; a copy built here overrides the shipped one.
    About 35 minutes on a 2-core CPU. An interrupted run resumes from its last checkpoint when
    started again with the same options.
    """
    from redraft.critics.factuality.training import default_verifier_dir, train_default
    from redraft.critics.factuality.training_data import SWAPS

    console.print("Assembling length-balanced training data from the installed packages (about a minute)...")
    with Bars(transient=True) as bars:
        metrics = train_default(
            per_source=per_source,
            epochs=epochs,
            swaps=SWAPS if swaps is None else swaps,
            unknowns=unknowns,
            progress=bars,
        )
    console.print(
        f"default verifier saved to {default_verifier_dir()} (it overrides the shipped copy): "
        f"held-out balanced accuracy "
        f"{metrics.balanced_accuracy:.3f}, precision {metrics.precision:.3f}, recall {metrics.recall:.3f} "
        f"on {metrics.n} examples"
    )


@verifier_app.command("export")
@cli_errors
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
