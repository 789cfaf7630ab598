"""Build an infini-gram u8 index (the comparison baseline; test-only licence, never shipped)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path


def build_infinigram(data_dir: Path, save_dir: Path, *, cpus: int = 2, mem_gb: int = 4) -> None:
    # Its default --ulimit (1048576) exceeds the hard limit here and fails: pass the hard limit.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cmd = [
        sys.executable,
        "-m",
        "infini_gram.indexing",
        "--data_dir",
        str(data_dir),
        "--save_dir",
        str(save_dir),
        "--token_dtype",
        "u8",
        "--cpus",
        str(cpus),
        "--mem",
        str(mem_gb),
        "--add_metadata",
        "--ulimit",
        str(hard),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
