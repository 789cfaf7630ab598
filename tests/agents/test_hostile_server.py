"""The OpenAI-compatible client against a hostile server on loopback: every read is bounded, and
nothing partial is recorded as a draft.

Each server behaviour below was found to be accepted before (an endless stream logged as a
37,752-character ``accepted`` draft, a 300 MB event read whole, a stream cut short logged as
``stop``): each test names the case and checks the client's named error.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from redraft import CorrectionConfig, build_graph
from redraft.agents import openai_compat
from redraft.agents.base import SamplingParams
from redraft.agents.openai_compat import OpenAICompatLLM, ServerError
from redraft.store.models import Round
from redraft.store.sql import SQLStore

Behave = Callable[[BaseHTTPRequestHandler, dict], None]


class Hostile:
    """A loopback server whose every POST runs ``behave(handler, body)`` and every GET runs
    ``on_get(handler)``, each writing raw bytes."""

    def __init__(self) -> None:
        self.behave: Behave = lambda h, b: None
        self.on_get: Callable[[BaseHTTPRequestHandler], None] = lambda h: reply(h, {}, status=404)
        self.requests: list[BaseHTTPRequestHandler] = []
        self.times: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.times.append(time.monotonic())
                self.close_connection = True
                stub.requests.append(self)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client hung up
                    stub.behave(self, body)

            def do_GET(self) -> None:
                self.close_connection = True
                stub.requests.append(self)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    stub.on_get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.server.shutdown()
    server.server.server_close()


def head(h: BaseHTTPRequestHandler, status: int = 200, kind: str = "text/event-stream", **extra: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", kind)
    for k, v in extra.items():
        h.send_header(k.replace("_", "-"), v)
    h.end_headers()


def event(content: str | None = None, reason: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    return f"data: {json.dumps({'choices': [{'delta': delta, 'finish_reason': reason}]})}\n\n".encode()


def reply(h: BaseHTTPRequestHandler, answer: object, status: int = 200, raw: bytes | None = None, **extra: str) -> None:
    data = raw if raw is not None else json.dumps(answer).encode()
    head(h, status, "application/json", Content_Length=str(len(data)), **extra)
    h.wfile.write(data)


def chat(text: str, reason: str | None = "stop", **usage: int) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": reason}], "usage": usage}


def streamed(hostile: Hostile, tmp_path: Path, timeout_s: float = 30.0) -> Callable[[], list]:
    """A one-round graph on the server, streamed (``stream_mode="messages"``), into a store: the
    path whose partial replies used to be logged as accepted drafts. Run it, then read
    :func:`drafts` for what was recorded."""
    llm = OpenAICompatLLM(hostile.url, "m", context_length=4096, timeout_s=timeout_s, max_retries=0)
    store = SQLStore(f"sqlite:///{tmp_path / 'runs.db'}")
    config = CorrectionConfig(max_rounds=1, generation=SamplingParams(max_new_tokens=16))
    graph = build_graph(llm=llm, critics=[], config=config, store=store)
    return lambda: list(graph.stream({"prompt": "q"}, stream_mode="messages"))


def drafts(tmp_path: Path) -> list[str]:
    with SQLStore(f"sqlite:///{tmp_path / 'runs.db'}") as store, store.session() as s:
        return list(s.scalars(select(Round.draft)))


def plain(hostile: Hostile, **kw: object) -> OpenAICompatLLM:
    return OpenAICompatLLM(hostile.url, "m", context_length=4096, max_retries=0, **kw)  # type: ignore[arg-type]


ONE = [[{"role": "user", "content": "q"}]]
SIXTEEN = SamplingParams(max_new_tokens=16)


# -- streams ---------------------------------------------------------------------------------------


def test_an_endless_stream_is_cut_off_at_max_tokens(hostile, tmp_path):
    def endless(h, body):
        head(h)
        while True:
            h.wfile.write(event("word "))

    hostile.behave = endless
    with pytest.raises(ServerError, match="longer than max_tokens=16"):
        streamed(hostile, tmp_path)()
    assert drafts(tmp_path) == []


def test_a_slow_drip_stream_is_cut_off_at_the_deadline(hostile, tmp_path):
    def drip(h, body):
        head(h)
        h.wfile.write(event("The capital "))
        while True:
            h.wfile.write(b": keep-alive\n\n")
            h.wfile.flush()
            time.sleep(0.05)

    hostile.behave = drip
    started = time.monotonic()
    with pytest.raises(ServerError, match="did not finish a streamed reply within timeout_s=1"):
        streamed(hostile, tmp_path, timeout_s=1.0)()
    assert drafts(tmp_path) == []
    assert time.monotonic() - started < 30  # bounded by the deadline, not by the server stopping


def test_one_huge_event_is_refused_before_it_is_read_whole(hostile, tmp_path):
    def huge(h, body):
        head(h)
        h.wfile.write(b'data: {"choices": [{"delta": {"content": "' + b"x" * (4 << 20))

    hostile.behave = huge
    with pytest.raises(ServerError, match="stream event over 1,048,576 bytes"):
        streamed(hostile, tmp_path)()
    assert drafts(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "body", "match"),
    [
        ("cut short", event("The capital of France is "), "without a finish reason or \\[DONE\\]"),
        ("no events", b"", "after 0 event\\(s\\)"),
        ("plain JSON", json.dumps(chat("Paris.")).encode(), "not a server-sent event stream"),
        ("bad UTF-8", b'data: {"choices": [{"delta": {"content": "\xff\xfe"}}]}\n\n', "not valid UTF-8"),
    ],
)
def test_an_incomplete_stream_is_an_error_never_a_draft(hostile, tmp_path, name, body, match):
    def send(h, _):
        head(h)
        h.wfile.write(body)

    hostile.behave = send
    with pytest.raises(ServerError, match=match):
        streamed(hostile, tmp_path)()
    assert drafts(tmp_path) == []


def test_a_complete_stream_with_only_done_is_accepted(hostile, tmp_path):
    def done(h, _):
        head(h)
        h.wfile.write(event("Paris.") + b"data: [DONE]\n\n")

    hostile.behave = done
    chunks = streamed(hostile, tmp_path)()
    assert "".join(c[0].content for c in chunks) == "Paris."
    assert drafts(tmp_path) == ["Paris."]


# -- plain replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (chat("The capital of France is ", reason=None), "finish_reason None"),
        (chat("The capital", reason="abort"), "finish_reason 'abort'"),
        (chat("word " * 10, completion_tokens=1000), "usage says 1,000 tokens"),
        (chat("x" * 5000), "5,000 characters"),
    ],
)
def test_an_incomplete_or_overlong_reply_is_an_error(hostile, answer, match):
    hostile.behave = lambda h, _: reply(h, answer)
    with pytest.raises(ServerError, match=match):
        plain(hostile).generate(ONE, SIXTEEN)


def test_a_reply_over_the_byte_cap_is_not_read_further(hostile, monkeypatch):
    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 4096)
    hostile.behave = lambda h, _: reply(h, chat("y" * 10_000))
    with pytest.raises(ServerError, match="reply over 4,096 bytes"):
        plain(hostile).generate(ONE, SIXTEEN)


def test_invalid_utf8_is_refused_not_repaired(hostile):
    raw = json.dumps(chat("PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"Par\xc3is")
    hostile.behave = lambda h, _: reply(h, None, raw=raw)
    with pytest.raises(ServerError, match="not valid UTF-8"):
        plain(hostile).generate(ONE, SIXTEEN)


def test_completion_tokens_come_from_usage_without_a_tokenizer(hostile):
    hostile.behave = lambda h, _: reply(h, chat("Paris is the capital.", completion_tokens=5))
    [c] = plain(hostile).generate(ONE, SIXTEEN)
    assert (c.text, c.n_tokens, c.token_ids) == ("Paris is the capital.", 5, ())


def test_retry_after_is_honoured(hostile):
    answers = iter([("busy", 503, {"Retry_After": "1"}), (chat("Paris."), 200, {})])

    def behave(h, _):
        answer, status, extra = next(answers)
        reply(h, answer, status, **extra)

    hostile.behave = behave
    llm = OpenAICompatLLM(hostile.url, "m", context_length=4096, max_retries=1, backoff_s=0.001)
    [c] = llm.generate(ONE, SIXTEEN)
    assert c.text == "Paris." and hostile.times[1] - hostile.times[0] >= 0.9  # 1 s asked; backoff alone is 1 ms


# -- log-probabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize("logprob", [1000, math.nan, math.inf, "1e999", 0.5])
def test_impossible_logprobs_are_an_error_never_a_verdict(hostile, logprob):
    top = [{"token": "No", "logprob": logprob}, {"token": "Yes", "logprob": -2.0}]
    answer = {"choices": [{"message": {"content": "No"}, "finish_reason": "length", "logprobs": {"content": [
        {"token": "No", "logprob": -0.1, "top_logprobs": top}]}}]}  # fmt: skip
    hostile.behave = lambda h, _: reply(h, answer)
    with pytest.raises(ServerError, match="finite number <= 0"):
        plain(hostile).label_probs(ONE, ["Yes", "No"])


def test_a_rounding_hair_above_zero_is_probability_one(hostile):
    top = [{"token": "No", "logprob": 1e-6}]
    answer = {"choices": [{"message": {"content": "No"}, "finish_reason": "length", "logprobs": {"content": [
        {"token": "No", "logprob": 1e-6, "top_logprobs": top}]}}]}  # fmt: skip
    hostile.behave = lambda h, _: reply(h, answer)
    assert plain(hostile).label_probs(ONE, ["Yes", "No"]) == [{"Yes": 0.0, "No": 1.0}]
