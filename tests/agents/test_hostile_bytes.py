"""Round 3 of the hostile server: bytes are bounded before they are decoded, on every request
(chat, streaming, label probabilities and ``GET /models``).

Each case was found accepted before: a 30 KB zstd reply expanded to 1.96 GB inside httpx, a 9 KB
``gzip, gzip`` reply raised a bare ``MemoryError``, ``/models`` answered ``{"data": 5}`` gave a
``TypeError`` traceback, and a 1 byte/s drip on ``/models`` outlived ``timeout_s`` sixfold.
"""

from __future__ import annotations

import functools
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
import zstandard

from redraft.agents.openai_compat import TOP_LOGPROBS, OpenAICompatLLM, ServerError
from redraft.agents.tracing import streaming_to
from tests.agents.test_hostile_server import ONE, SIXTEEN, Hostile, chat, event, head, hostile, plain, reply

__all__ = ["hostile"]  # the fixture, imported for its name

BOMB = 1 << 30
"""What each bomb expands to: 1 GiB of zeros, from a few kilobytes on the wire."""


@functools.cache
def gzip_bomb(layers: int = 1) -> bytes:
    data = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing, streamed: never 1 GiB in memory here
    out = bytearray()
    zeros = bytes(1 << 20)
    for _ in range(BOMB >> 20):
        out += data.compress(zeros)
    out += data.flush()
    for _ in range(layers - 1):
        out = bytearray(gzip.compress(bytes(out), 9))
    return bytes(out)


@functools.cache
def zstd_bomb() -> bytes:
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    zeros = bytes(1 << 20)
    out = b"".join(compressor.compress(zeros) for _ in range(BOMB >> 20))
    return out + compressor.flush()


BOMBS = {"gzip": lambda: gzip_bomb(), "gzip, gzip": lambda: gzip_bomb(2), "zstd": zstd_bomb}


def peak_mb(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Python's peak allocation (MB) while ``call`` runs, and what it raised: the decompressor's
    output buffers are Python bytes, so a bomb that expands shows here."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except BaseException as exc:
        raised = exc
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return peak, raised


def compressed(encoding: str, body: bytes, kind: str = "application/json") -> Callable:
    def behave(h, *_):
        head(h, 200, kind, Content_Encoding=encoding, Content_Length=str(len(body)))
        h.wfile.write(body)

    return behave


@pytest.mark.parametrize("encoding", sorted(BOMBS))
@pytest.mark.parametrize("route", ["chat", "stream", "label_probs", "models"])
def test_a_compression_bomb_is_refused_unread(hostile: Hostile, encoding, route):
    bomb = BOMBS[encoding]()
    assert len(bomb) < 1 << 20  # a bomb: small on the wire
    llm = plain(hostile)
    behave = compressed(encoding, bomb, "text/event-stream" if route == "stream" else "application/json")
    hostile.behave = lambda h, b: behave(h)
    hostile.on_get = behave
    calls = {
        "chat": lambda: llm.generate(ONE, SIXTEEN),
        "stream": lambda: _stream(llm),
        "label_probs": lambda: llm.label_probs(ONE, ["Yes", "No"]),
        "models": lambda: OpenAICompatLLM(hostile.url, "m", max_retries=0).context_length,
    }
    peak, raised = peak_mb(calls[route])
    assert peak < 100, f"peak {peak:.0f} MB while refusing a {encoding} bomb"
    assert isinstance(raised, ServerError), raised
    assert "Content-Encoding" in str(raised) and encoding.split(",")[0] in str(raised)
    assert hostile.requests[-1].headers["Accept-Encoding"] == "identity"


def _stream(llm: OpenAICompatLLM) -> None:
    """``generate`` down its streaming path: the one a listening graph takes (a token sink set)."""
    with streaming_to(lambda i, piece: None):
        llm.generate(ONE, SIXTEEN)


def test_identity_is_asked_for_and_a_plain_reply_still_reads(hostile):
    hostile.behave = lambda h, b: reply(h, chat("fine"), Content_Encoding="identity")
    assert plain(hostile).generate(ONE, SIXTEEN)[0].text == "fine"
    assert hostile.requests[-1].headers["Accept-Encoding"] == "identity"


# -- GET /models ------------------------------------------------------------------------------------


def served(hostile: Hostile, **kw: object) -> OpenAICompatLLM:
    return OpenAICompatLLM(hostile.url, "m", max_retries=0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("data not a list", b'{"data": 5}', "does not fit the API"),
        ("entry not an object", b'{"data": [5]}', "does not fit the API"),
        ("not an object", b"[1, 2]", "not a JSON object"),
        ("nested", b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
        ("invalid UTF-8", b'{"data": [{"id": "m\xff"}]}', "not valid UTF-8"),
        ("malformed", b'{"data": [', "malformed JSON"),
        ("negative length", b'{"data": [{"id": "m", "max_model_len": -100}]}', "max_model_len"),
        (
            "absurd length",
            b'{"data": [{"id": "m", "max_model_len": 10000000000000000000000000000000000000000}]}',
            "max_model_len",
        ),
        ("length as text", b'{"data": [{"id": "m", "max_model_len": "4096"}]}', "max_model_len"),
        ("length as bool", b'{"data": [{"id": "m", "max_model_len": true}]}', "max_model_len"),
    ],
)
def test_a_broken_model_list_is_a_named_error(hostile, name, raw, match):
    hostile.on_get = lambda h: reply(h, None, raw=raw)
    with pytest.raises(ServerError, match=match):
        served(hostile).context_length  # noqa: B018 - the lookup is the property


def test_a_model_list_over_the_byte_cap_is_not_read_further(hostile, monkeypatch):
    from redraft.agents import openai_compat

    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 1 << 20)
    sent = []

    def endless(h):
        head(h, 200, "application/json")  # no length: the body runs until the client hangs up
        h.wfile.write(b'{"data": [{"id": "m", "pad": "')
        for _ in range(400):  # 400 MB if nobody stops it
            h.wfile.write(b"x" * (1 << 20))
            sent.append(1)

    hostile.on_get = endless
    with pytest.raises(ServerError, match="over 1,048,576 bytes"):
        served(hostile).context_length  # noqa: B018
    assert len(sent) < 400


def test_a_model_list_drip_is_cut_at_the_deadline(hostile):
    def drip(h):
        head(h, 200, "application/json")
        for byte in b'{"data": [' * 100:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.5)  # a drip: every read is within httpx's per-read timeout

    hostile.on_get = drip
    start = time.monotonic()
    with pytest.raises(ServerError, match="within timeout_s=2"):
        served(hostile, timeout_s=2.0).context_length  # noqa: B018
    assert time.monotonic() - start < 2.0 + 2.0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"data": [{"id": "m", "max_model_len": 4096, "owned_by": "vllm"}]}, 4096),
        ({"data": [{"id": "other", "max_model_len": 4096}]}, 8192),  # not listed: the default
        ({"data": [{"id": "m"}]}, 8192),  # no length reported (llama.cpp, hosted APIs)
    ],
)
def test_a_sound_model_list_gives_the_length_or_the_default(hostile, answer, expected):
    hostile.on_get = lambda h: reply(h, answer)
    assert served(hostile).context_length == expected


def test_no_model_route_or_no_server_gives_the_default(hostile, closed_port):
    hostile.on_get = lambda h: reply(h, {"error": "not found"}, status=404)
    assert served(hostile).context_length == 8192
    assert OpenAICompatLLM(f"http://127.0.0.1:{closed_port}/v1", "m").context_length == 8192


@pytest.fixture
def closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# -- status codes, content types, log-probabilities -------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_body_is_never_a_draft(hostile, status, stream):
    def redirect(h, b):
        if stream:
            head(h, status, "text/event-stream", Location="http://127.0.0.1:1/v1")
            h.wfile.write(event("looks like a draft", "stop") + b"data: [DONE]\n\n")
        else:
            reply(h, chat("looks like a draft"), status=status, Location="http://127.0.0.1:1/v1")

    hostile.behave = redirect
    llm = plain(hostile)
    with pytest.raises(ServerError, match=f"HTTP {status} \\(a redirect"):
        _stream(llm) if stream else llm.generate(ONE, SIXTEEN)


@pytest.mark.parametrize("content", [["a", "b"], {"text": "a"}, 5])
def test_a_streamed_delta_that_is_not_text_is_a_named_error(hostile, content):
    def odd(h, b):
        head(h)
        payload = {"choices": [{"delta": {"content": content}, "finish_reason": None}]}
        h.wfile.write(f"data: {json.dumps(payload)}\n\n".encode() + event(None, "stop") + b"data: [DONE]\n\n")

    hostile.behave = odd
    with pytest.raises(ServerError, match=r"malformed stream event .*not text"):
        _stream(plain(hostile))


def _top(alternatives: list[dict]) -> dict:
    first = alternatives[0] if alternatives else {"token": "Yes", "logprob": -0.1}
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": first["token"]},
                "finish_reason": "length",
                "logprobs": {"content": [{**first, "top_logprobs": alternatives}]},
            }
        ]
    }


@pytest.mark.parametrize(
    ("name", "alternatives", "match"),
    [
        (
            "200,000 alternatives",
            [{"token": f"t{i}", "logprob": -20.0} for i in range(200_000)],
            "200,000 alternatives",
        ),
        ("a token twice", [{"token": "Yes", "logprob": -0.1}] * 2, "sum to more than 1"),
        ("invented mass", [{"token": "Yes", "logprob": -0.2}, {"token": "yes", "logprob": -0.3}], "sum to more than 1"),
    ],
)
def test_log_probabilities_that_cannot_be_a_distribution_are_refused(hostile, name, alternatives, match):
    hostile.behave = lambda h, b: reply(h, _top(alternatives))
    with pytest.raises(ServerError, match=match):
        plain(hostile).label_probs(ONE, ["Yes", "No"])


def test_a_full_top_20_still_reads(hostile):
    alternatives = [{"token": "Yes", "logprob": -0.1}] + [
        {"token": f"t{i}", "logprob": -10.0} for i in range(TOP_LOGPROBS - 1)
    ]
    hostile.behave = lambda h, b: reply(h, _top(alternatives))
    (mass,) = plain(hostile).label_probs(ONE, ["Yes", "No"])  # type: ignore[misc]
    assert mass["Yes"] == pytest.approx(0.905, abs=1e-3) and mass["No"] == 0.0


# -- keys and proxies -------------------------------------------------------------------------------


def test_a_key_to_a_loopback_server_never_goes_through_a_proxy(hostile, monkeypatch):
    proxy = Hostile()  # would see the key in clear text, were the request sent through it
    proxy.behave = lambda h, b: reply(h, chat("from the proxy"))
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url.removesuffix("/v1"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        hostile.behave = lambda h, b: reply(h, chat("direct"))
        llm = OpenAICompatLLM(hostile.url, "m", api_key="sk-secret", context_length=4096, max_retries=0)
        assert llm.generate(ONE, SIXTEEN)[0].text == "direct"
        assert proxy.requests == []
        assert hostile.requests[-1].headers["Authorization"] == "Bearer sk-secret"
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


def test_a_deeply_nested_error_body_is_still_a_named_error(hostile):
    """The error message is read from a 4xx body too; nested past the parser's depth, it is shown
    as text, never a RecursionError."""
    nested = b'{"error": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    hostile.behave = lambda h, b: reply(h, None, status=400, raw=nested)
    with pytest.raises(ServerError, match="rejected the request with HTTP 400"):
        plain(hostile).generate(ONE, SIXTEEN)
