"""The OpenAI-compatible client against a local stub server speaking chat completions."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from redraft.agents.base import SamplingParams
from redraft.agents.openai_compat import OpenAICompatLLM, ServerError
from redraft.errors import InputError


class Stub:
    """Scriptable behaviour: a queue of (status, body) answers, then echo completions."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str]] = []
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.delay_s = 0.0


def handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, json.dumps({"data": [{"id": "stub-model", "max_model_len": 2048}]}))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with stub.lock:
                stub.requests.append(body)
                stub.in_flight += 1
                stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                scripted = stub.script.pop(0) if stub.script else None
            time.sleep(stub.delay_s)
            with stub.lock:
                stub.in_flight -= 1
            if scripted is not None:
                self._send(*scripted)
                return
            last = body["messages"][-1]["content"]
            text = f"echo: {last}"[: body["max_tokens"]]
            reason = "length" if len(f"echo: {last}") > body["max_tokens"] else "stop"
            answer = {
                "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": reason}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
            }
            self._send(200, json.dumps(answer))

    return Handler


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def conv(text: str) -> list:
    return [{"role": "user", "content": text}]


def test_batch_round_trip_with_bounded_concurrency(stub):
    state, url = stub
    state.delay_s = 0.05
    llm = OpenAICompatLLM(url, "stub-model", max_concurrency=3)
    out = llm.generate([conv(f"q{i}") for i in range(10)], SamplingParams(max_new_tokens=50, seed=3))
    assert [c.text for c in out] == [f"echo: q{i}" for i in range(10)]  # order kept
    assert all(c.finish_reason == "stop" and c.prompt_tokens == 7 for c in out)
    assert 1 < state.max_in_flight <= 3
    assert state.requests[0]["seed"] == 3 and state.requests[0]["model"] == "stub-model"
    assert llm.context_length == 2048  # from GET /models


def test_length_finish_reason_is_mapped(stub):
    _, url = stub
    [c] = OpenAICompatLLM(url, "stub-model").generate([conv("a long question")], SamplingParams(max_new_tokens=5))
    assert c.finish_reason == "length" and c.text == "echo:"


def test_transient_errors_are_retried(stub):
    state, url = stub
    state.script = [(503, '{"error": {"message": "overloaded"}}'), (429, "{}")]
    llm = OpenAICompatLLM(url, "stub-model", backoff_s=0.01)
    [c] = llm.generate([conv("x")], SamplingParams())
    assert c.text == "echo: x" and len(state.requests) == 3


def test_client_errors_fail_at_once_with_the_servers_message(stub):
    state, url = stub
    state.script = [(400, '{"error": {"message": "model nope does not exist"}}')]
    with pytest.raises(ServerError, match="HTTP 400: model nope does not exist"):
        OpenAICompatLLM(url, "nope", backoff_s=0.01).generate([conv("x")], SamplingParams())
    assert len(state.requests) == 1


def test_malformed_json_is_a_clear_error(stub):
    state, url = stub
    state.script = [(200, "{not json")]
    with pytest.raises(ServerError, match="malformed JSON"):
        OpenAICompatLLM(url, "stub-model").generate([conv("x")], SamplingParams())
    state.script = [(200, '{"choices": []}')]
    with pytest.raises(ServerError, match="without choices"):
        OpenAICompatLLM(url, "stub-model").generate([conv("x")], SamplingParams())


def test_a_server_that_is_down_is_retried_then_named():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    llm = OpenAICompatLLM(url, "m", max_retries=2, backoff_s=0.01, context_length=100)
    with pytest.raises(ServerError, match=rf"{url}/chat/completions after 3 attempts .*ConnectError"):
        llm.generate([conv("x")], SamplingParams())


def test_logits_processors_and_bad_urls_are_rejected():
    with pytest.raises(InputError, match="http"):
        OpenAICompatLLM("127.0.0.1:8000", "m")
    llm = OpenAICompatLLM("http://127.0.0.1:9/v1", "m", context_length=100)
    with pytest.raises(InputError, match="logits processors cannot run over HTTP"):
        llm.generate([conv("x")], SamplingParams(), logits_processors=[object()])


def test_works_inside_a_running_event_loop(stub):
    import asyncio

    _, url = stub
    llm = OpenAICompatLLM(url, "stub-model")

    async def main() -> str:
        return llm.generate([conv("jupyter")], SamplingParams())[0].text

    assert asyncio.run(main()) == "echo: jupyter"


def test_cli_runs_against_an_openai_compatible_server(stub, tmp_path):
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.store import SQLStore

    state, url = stub
    db = tmp_path / "o.db"
    args = ["run", "--prompt", "Hi", "--backend", "openai", "--base-url", url, "--model", "stub-model"]
    result = CliRunner().invoke(cli.app, [*args, "--critic", "self", "--max-rounds", "1", "--db", str(db)])
    assert result.exit_code == 0, result.output
    [run] = SQLStore(f"sqlite:///{db}").runs()
    assert run.model_id == "stub-model"
    assert state.requests[0]["messages"][-1]["content"] == "Hi"  # the draft, then the self-check


@pytest.mark.skipif(__import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_cli_vllm_backend_without_vllm_names_the_extra(tmp_path):
    from typer.testing import CliRunner

    from redraft import cli

    args = ["run", "--prompt", "Hi", "--backend", "vllm", "--model", "/m", "--db", str(tmp_path / "v.db")]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2 and 'pip install "redraft[vllm]"' in " ".join(result.output.split())
