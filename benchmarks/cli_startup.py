"""How fast the command line answers: ``redraft --help``, a command's help, a listing and a usage
error, each as a fresh process, against ``python -c "import torch"`` timed in the same run (what
every command paid before the heavy imports moved inside the commands that need them).

    python benchmarks/cli_startup.py [--repeats 7]

Goal: ``redraft --help`` at most 10% of the CLI's old import time (3.5 s on the 2-core machine,
1.7x ``import torch``), i.e. a ratio to ``import torch`` of about 0.17 or less.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    'python -c "import torch" (baseline)': [sys.executable, "-c", "import torch"],
    "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
    "redraft --help": [sys.executable, "-m", "redraft", "--help"],
    "redraft run --help": [sys.executable, "-m", "redraft", "run", "--help"],
    "redraft data list": [sys.executable, "-m", "redraft", "data", "list"],
    'redraft run --prompt " " (usage error)': [sys.executable, "-m", "redraft", "run", "--prompt", " "],
}


def wall_s(command: list[str], repeats: int) -> float:
    """The median wall time of ``command`` over ``repeats`` runs (after one warm-up run, so the
    file cache is warm for every command alike)."""
    subprocess.run(command, capture_output=True, check=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    timings = {name: wall_s(command, args.repeats) for name, command in COMMANDS.items()}
    baseline = timings['python -c "import torch" (baseline)']
    print(f"{'command':44} {'median s':>9} {'vs import torch':>16}")
    for name, seconds in timings.items():
        print(f"{name:44} {seconds:9.3f} {seconds / baseline:15.2f}x")


if __name__ == "__main__":
    main()
