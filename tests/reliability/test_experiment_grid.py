"""Catalogue: an experiment file cannot make an unbounded grid.

Before, 1.7 KB of YAML (aliases of aliases) made 1,000,000 identical cells, 833 MB just to list
them. Repeated axis values are refused by name, and the grid has a stated bound (``max_cells``,
256 by default, raised on purpose).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.errors import InputError
from redraft.experiments import ExperimentSpec
from redraft.experiments.spec import MAX_SPEC_BYTES

runner = CliRunner()


def test_a_grid_of_a_million_identical_cells_is_refused(tmp_path):
    path = tmp_path / "bomb.yaml"
    critics = ", ".join(["*c"] * 1000)  # the same critic set, a thousand times
    modes = ", ".join(["*m"] * 1000)
    text = f"name: bomb\ndatasets: [{{name: benign}}]\ncritics: [&c [oracle], {critics}]\nmodes: [&m cac, {modes}]\n"
    path.write_text(text)
    assert len(text) < 10_000  # 1001 x 1001 cells
    with pytest.raises(InputError, match=r"critics lists \['oracle'\] more than once"):
        ExperimentSpec.from_file(path)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"critics": ["oracle", ["oracle"]]}, "critics lists ['oracle'] more than once"),
        ({"modes": ["cac", "fresh", "cac"]}, "modes lists cac more than once"),
        ({"max_rounds": [2, 3, 2]}, "max_rounds lists 2 more than once"),
    ],
)
def test_repeated_axis_values_are_refused_by_name(axes, message):
    spec = {"name": "x", "datasets": [{"name": "benign"}], "critics": ["oracle"], **axes}
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ExperimentSpec.parse(spec)


def test_a_grid_over_the_bound_is_refused_unless_raised_on_purpose(tmp_path):
    big = {"name": "x", "datasets": [{"name": "benign"}], "critics": ["oracle"], "max_rounds": list(range(1, 301))}
    with pytest.raises(InputError, match=r"makes 300 runs .* over max_cells=256; .*set max_cells"):
        ExperimentSpec.parse(big)
    assert len(ExperimentSpec.parse({**big, "max_cells": 300}).cells()) == 300
    # Through the CLI: exit 2 with the message, before anything loads.
    path = tmp_path / "big.yaml"
    path.write_text(
        "name: x\ndatasets: [{name: benign}]\ncritics: [oracle]\nmax_rounds: ["
        + ", ".join(map(str, range(1, 301)))
        + "]\n"
    )
    result = runner.invoke(cli.app, ["experiment", "run", str(path), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "over max_cells=256" in " ".join(result.output.split())
    assert not (tmp_path / "x.db").exists()


def test_an_oversized_experiment_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"name: x\n#" + b"x" * MAX_SPEC_BYTES)
    with pytest.raises(InputError, match="over 1,048,576 bytes"):
        ExperimentSpec.from_file(path)
