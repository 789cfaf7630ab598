"""Packaging like a library: ranges in pyproject.toml for users, one exact tested set in
constraints.txt for CI, and the two agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from redraft._packages import data_dists

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def user_requirements() -> list[Requirement]:
    """Runtime dependencies and every extra but ``dev`` (whose tools constraints.txt pins)."""
    extras = PROJECT["optional-dependencies"]
    return [Requirement(r) for r in PROJECT["dependencies"]] + [
        Requirement(r) for name, reqs in extras.items() if name != "dev" for r in reqs
    ]


def test_user_facing_dependencies_are_ranges_with_a_lower_bound_and_no_exact_pin():
    for req in user_requirements():
        operators = {s.operator for s in req.specifier}
        assert ">=" in operators and "==" not in operators, f"{req}: give a tested lower bound, not a pin"


def test_every_lower_bound_is_the_version_ci_tests():
    """CI installs constraints.txt; a bound below it would be an untested claim."""
    pins = constraints()
    for req in user_requirements():
        name = canonicalize_name(req.name)
        if name not in pins:
            assert name in {"vllm", "langgraph-checkpoint-postgres"}, f"{req.name} is not in CI"
            continue
        floor = next(Version(s.version) for s in req.specifier if s.operator == ">=")
        assert floor == pins[name], f"{req}: CI tests {pins[name]}"
        assert req.specifier.contains(pins[name])


def test_constraints_pin_every_dev_tool_and_no_data_package():
    pins = constraints()
    for req in map(Requirement, PROJECT["optional-dependencies"]["dev"]):
        assert canonicalize_name(req.name) in pins, f"{req.name} is in the dev extra but not pinned in constraints.txt"
    # The data packages' versions are written once, in redraft/_packages.py.
    assert not {canonicalize_name(d) for d in data_dists()} & set(pins)
    assert pins["torch"] == Version("2.13.0")
