"""vLLM's OpenAI-compatible server as a child process on loopback, for experiments and
benchmarks that talk to it through the ``openai`` backend.

The server is started as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console
script of the CPU build looks up a distribution named ``vllm`` and fails), is ready when
``/v1/models`` answers, and is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from redraft.agents.openai_compat import ServerError

READY_S = 600.0
"""The most a start may take: loading and warming a model on a shared 2-core CPU takes ~90 s."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VLLMServer:
    """A vLLM server for ``model`` on ``127.0.0.1:port``, serving it as ``served_name``.

    Example:
        >>> with VLLMServer("/models/smol", log=Path("server.log")) as srv:  # needs: vLLM  # doctest: +SKIP
        ...     srv.url
        'http://127.0.0.1:...'
    """

    def __init__(
        self,
        model: str,
        *,
        log: Path,
        served_name: str = "smol",
        port: int | None = None,
        args: tuple[str, ...] = ("--max-model-len", "2048", "--dtype", "bfloat16"),
        env: dict[str, str] | None = None,
        enforce_eager: bool = False,
    ) -> None:
        self.model, self.log, self.served_name = model, log, served_name
        self.port = port or free_port()
        # --enforce-eager: no torch.compile at start-up (see BackendSpec.enforce_eager).
        self.args = (*args, "--enforce-eager") if enforce_eager else args
        self.env = {"VLLM_CPU_KVCACHE_SPACE": "2", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        """Start the server and return once ``/v1/models`` answers (the event, not a delay)."""
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model]
        cmd += ["--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"the vLLM server exited with {self.proc.returncode}; its log is {self.log}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"the vLLM server did not answer within {READY_S:.0f} s; its log is {self.log}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a minute."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
