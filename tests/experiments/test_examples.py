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
def test_example_experiment_files_parse(path):
    spec = ExperimentSpec.from_file(path)
    assert spec.cells()


def test_held_out_prompts_are_disjoint_from_the_trained_ones():
    sweep = load_rows(ExperimentSpec.from_file(EXAMPLES / "noisy-oracle-sweep.yaml"))
    held = load_rows(ExperimentSpec.from_file(EXAMPLES / "dpo-heldout.yaml"))
    sources = {r.source for r in held}
    assert sources == {r.source for r in sweep} and len(held) == 3 * 48
    assert not {r.prompt for r in sweep} & {r.prompt for r in held}
