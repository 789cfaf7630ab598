"""The experiment files in examples/ stay valid as the schema changes: each one the README cites
parses, names known critics and datasets, and the held-out file's prompts are disjoint from the
prompts the sweep (whose pairs are trained on) ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from redraft.experiments import ExperimentSpec
from redraft.experiments.runner import load_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_experiment_files_parse_and_are_tied_to_a_page(path):
    ExperimentSpec.from_file(path)  # raises, naming the field, when the schema moved on
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert f"`{path.name}`" in index, f"examples/README.md does not say what {path.name} measures"


@pytest.mark.parametrize(
    ("seen", "held_out", "n"),
    [
        ("dpo-pairs.yaml", "dpo-heldout.yaml", 3 * 48),  # trained on vs evaluated on
        ("self-vs-oracle-calibrate.yaml", "self-vs-oracle.yaml", 2 * 16),  # τ picked on vs used on
        ("self-vs-oracle-qwen-calibrate.yaml", "self-vs-oracle-qwen.yaml", 32),
        ("dpo-pairs-benign.yaml", "dpo-heldout.yaml", 3 * 48),  # answer ≻ over-refusal pairs
    ],
)
def test_held_out_prompts_are_disjoint_from_the_ones_fitted_on(seen, held_out, n):
    fitted = load_rows(ExperimentSpec.from_file(EXAMPLES / seen))
    held = load_rows(ExperimentSpec.from_file(EXAMPLES / held_out))
    assert {r.source for r in fitted} <= {r.source for r in held} and len(held) == n
    assert not {r.prompt for r in fitted} & {r.prompt for r in held}
