"""``benchmarks/vllm_throughput.py`` at a tiny scale, in vLLM's environment (the main suite's
``tests/test_benchmarks.py`` runs every other benchmark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="needs vLLM: CI runs these in the venv .ci/vllm.sh builds")

ROOT = Path(__file__).resolve().parents[2]


def test_the_vllm_throughput_benchmark_runs_at_a_tiny_scale():
    args = ["--prompts", "2", "--rounds", "1", "--max-new-tokens", "4", "--enforce-eager"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "vllm_throughput.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "in-process vLLM engine" in done.stdout, done.stdout[-3000:]
