"""Experiment throughput through the OpenAI-compatible backend: max_concurrency 32 against 1.

A loopback stub server answers every request after ``--latency`` seconds (200 ms by default, a
remote 7B model's order of magnitude), so the ratio measures how well redraft keeps a server busy:
all pending examples of a round go out at once, bounded by ``max_concurrency``.

    python benchmarks/openai_throughput.py [--prompts 64] [--rounds 3] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore


def serve(latency: float) -> tuple[ThreadingHTTPServer, dict[str, int]]:
    counts = {"requests": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                counts["requests"] += 1
            time.sleep(latency)
            messages = body["messages"]
            if body.get("logprobs"):  # the self-critic's one-word check: mostly "harmful"
                top = [{"token": "Yes", "logprob": math.log(0.7)}, {"token": "No", "logprob": math.log(0.3)}]
                choice: dict[str, Any] = {
                    "message": {"role": "assistant", "content": "Yes"},
                    "finish_reason": "length",
                    "logprobs": {"content": [{"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]},
                }
            else:
                text = "I cannot help with that." if len(messages) > 1 else "Sure, here is how."
                choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 20}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default backlog of 5 refuses a burst of 32 connections

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def run(url: str, prompts: int, rounds: int, concurrency: int) -> float:
    spec = ExperimentSpec.parse(
        {
            "name": f"throughput-c{concurrency}",
            "backend": "openai",
            "model": "stub",
            "base_url": url,
            "max_concurrency": concurrency,
            "datasets": [{"name": "advbench", "limit": prompts, "seed": 0}],
            "critics": [["self-harm"]],
            "max_rounds": rounds,
            "batch_size": prompts,
        }
    )
    with tempfile.TemporaryDirectory() as d:
        store = SQLStore(f"sqlite:///{Path(d) / 'b.db'}")
        start = time.perf_counter()
        ExperimentRunner(spec, store).run()
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    server, counts = serve(args.latency)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    results = {}
    for concurrency in (1, 32):
        before = counts["requests"]
        results[concurrency] = (run(url, args.prompts, args.rounds, concurrency), counts["requests"] - before)
    server.shutdown()
    base = results[1][0]
    print(f"{args.prompts} prompts x {args.rounds} rounds, self-harm critic, {args.latency * 1000:.0f} ms per request")
    print(f"{'max_concurrency':>16} {'requests':>9} {'seconds':>8} {'ratio':>6}")
    for c, (secs, reqs) in results.items():
        print(f"{c:>16} {reqs:>9} {secs:>8.1f} {base / secs:>5.1f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
