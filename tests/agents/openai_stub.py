"""A scriptable OpenAI-compatible chat-completions server on loopback, for end-to-end tests.

Replies come from ``reply(messages)``; a request with ``logprobs`` gets one token whose
``top_logprobs`` come from ``labels(messages)`` (label → probability), as vLLM's server answers.
The server can be stopped (the port then refuses connections) and restarted on the same port.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Messages = list[dict[str, str]]


class StubServer:
    def __init__(
        self,
        reply: Callable[[Messages], str],
        labels: Callable[[Messages], dict[str, float]] | None = None,
        *,
        delay_s: float = 0.0,
        model: str = "stub-model",
    ) -> None:
        self.reply, self.labels, self.delay_s, self.model = reply, labels, delay_s, model
        self.requests: list[dict[str, Any]] = []
        self.authorizations: set[str] = set()
        """Every distinct Authorization header received."""
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.port = 0
        self.on_request: Callable[[int], None] | None = None
        """Called with the request count before each answer (tests stop the server from it)."""
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.server = _Server(("127.0.0.1", self.port), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        if body.get("logprobs"):
            if self.labels is None:  # a server that ignores the logprobs request
                text, logprobs = self.reply(messages)[: body["max_tokens"]], None
            else:
                probs = self.labels(messages)
                top = sorted(probs.items(), key=lambda kv: -kv[1])[: body.get("top_logprobs", 5)]
                entries = [{"token": t, "logprob": math.log(p) if p > 0 else -100.0} for t, p in top]
                text = top[0][0] if top else ""
                logprobs = {"content": [{"token": text, "logprob": entries[0]["logprob"], "top_logprobs": entries}]}
            choice: dict[str, Any] = {"message": {"role": "assistant", "content": text}, "finish_reason": "length"}
            if logprobs is not None:
                choice["logprobs"] = logprobs
            return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 1}}
        text = self.reply(messages)
        return {
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split())},
        }


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 refuses a burst of concurrent requests
    allow_reuse_address = True  # restart on the same port at once


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_events(self, answer: dict[str, Any], body: dict[str, Any]) -> None:
            """The answer as server-sent events, a word at a time, as vLLM and OpenAI stream it:
            a role delta, content deltas, the finish reason, the usage chunk, then [DONE]."""
            [choice] = answer["choices"]
            text = choice["message"]["content"]
            words = [w for w in text.split(" ")]
            pieces = [w + " " for w in words[:-1]] + [words[-1]]
            events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}]
            events += [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces if p]
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append({"choices": [], "usage": answer["usage"]})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

        def do_GET(self) -> None:
            self._send(200, {"data": [{"id": stub.model, "max_model_len": 4096}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with stub.lock:
                stub.requests.append(body)
                stub.authorizations.add(self.headers.get("Authorization", ""))
                n = len(stub.requests)
                stub.in_flight += 1
                stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
            try:
                if stub.on_request is not None:
                    stub.on_request(n)
                time.sleep(stub.delay_s)
                if body.get("stream"):
                    self._send_events(stub.answer(body), body)
                else:
                    self._send(200, stub.answer(body))
            finally:
                with stub.lock:
                    stub.in_flight -= 1

    return Handler
