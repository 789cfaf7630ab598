"""``CorrectionConfig`` is the one schema of the loop: the library, ``redraft run``'s flags and an
experiment file all validate into it, with its defaults, and each strategy's name is written once,
in the registry."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from redraft.agents.base import SamplingParams
from redraft.cli import app
from redraft.cli._common import LOOP_FLAGS, loop_config
from redraft.cli.runs import DEMO_LOOP
from redraft.corrections.config import CorrectionConfig
from redraft.corrections.strategies import DEFAULT_STRATEGY, STRATEGIES
from redraft.experiments.spec import ExperimentSpec

PACKAGE = Path(__file__).resolve().parents[2] / "redraft"


def test_a_command_without_loop_flags_runs_the_librarys_defaults():
    assert loop_config() == CorrectionConfig()
    assert loop_config(max_new_tokens=None, mode=None) == CorrectionConfig()
    given = loop_config(max_rounds=2, mode="cac", max_new_tokens=10, constrain=True, best_of=3)
    assert (given.max_rounds, given.mode, given.generation.max_new_tokens, given.constrain, given.best_of) == (
        2,
        "cac",
        10,
        True,
        3,
    )


def test_the_demo_departs_from_the_defaults_only_where_it_says():
    assert loop_config(DEMO_LOOP) == CorrectionConfig(generation=SamplingParams(max_new_tokens=96))
    # A flag still wins over the demo's own value.
    assert loop_config(DEMO_LOOP, max_new_tokens=12).generation == SamplingParams(max_new_tokens=12)


def test_an_experiment_without_loop_settings_runs_the_librarys_defaults():
    spec = ExperimentSpec.parse({"name": "x", "datasets": [{"name": "benign", "limit": 1}], "critics": ["oracle"]})
    [cell] = spec.cells()
    assert spec.config(cell) == CorrectionConfig()
    assert cell.name == f"{DEFAULT_STRATEGY}/oracle/r{CorrectionConfig().max_rounds}"
    spec = ExperimentSpec.parse(
        {
            "name": "x",
            "datasets": [{"name": "benign", "limit": 1}],
            "critics": ["oracle"],
            "modes": ["cac", "feedback"],
            "correction": {"best_of": 2, "generation": {"max_new_tokens": 8}},
        }
    )
    configs = [spec.config(c) for c in spec.cells()]
    assert [(c.mode, c.best_of, c.generation.max_new_tokens) for c in configs] == [("cac", 2, 8), ("feedback", 2, 8)]


def test_the_help_shows_each_loop_flag_with_the_configs_default():
    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}, terminal_width=200).output
    flat = " ".join(out.split())
    defaults = CorrectionConfig()
    for flag, path in LOOP_FLAGS.items():
        value: object = defaults
        for key in path:
            value = getattr(value, key)
        option = "--" + flag.replace("_", "-")
        assert re.search(rf"{option}\b.*?\[default: {re.escape(str(value))}\]", flat), (option, value)
    for name in STRATEGIES:
        assert f"{name}:" in flat


def test_each_strategy_name_is_written_in_one_module():
    """A new strategy is one class in ``corrections/strategies.py``: no other module of redraft
    spells a strategy's name as a string (docstrings aside). "feedback" is also a critique's field,
    so for it only uses as a mode count."""
    spelled: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        code = re.sub(r'"""(?:.|\n)*?"""', "", path.read_text(encoding="utf-8"))
        for name in STRATEGIES:
            anywhere = rf"""["']{name}["']"""
            as_mode = rf"""(?:mode\s*(?:==|=|:)\s*|["']mode["']\s*:\s*|in \(\s*)["']{name}["']"""
            if re.search(as_mode if name == "feedback" else anywhere, code):
                spelled.setdefault(name, set()).add(str(path.relative_to(PACKAGE)))
    assert spelled == {
        "cac": {"corrections/strategies.py"},
        **{n: {"corrections/strategies.py"} for n in STRATEGIES if n != "feedback"},
    }
    # the finder finds the old spellings (graphs/correction.py had `if mode == "feedback":`)
    assert re.search(r"""mode\s*(?:==|=|:)\s*["']feedback["']""", 'if mode == "feedback":')


def test_typer_reads_the_generated_options():
    """The flags are real typer options (a typo in one is a usage error, not a silent default)."""
    result = CliRunner().invoke(app, ["run", "--prompt", "q", "--best-of", "0"])
    assert result.exit_code == 2 and "best_of" in " ".join(result.output.split())
    assert isinstance(app, typer.Typer)
