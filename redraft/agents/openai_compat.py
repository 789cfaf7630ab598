"""Any OpenAI-compatible chat-completions server (``vllm serve``, TGI, llama.cpp server, ...).
What a reply may contain is checked by :mod:`redraft.agents.replies`; this module sends requests,
retries, and reads bodies and streams against their byte bounds.

Requests go out concurrently (bounded by a semaphore) over one async ``httpx`` client. Transient
failures (connection errors, timeouts, 429 and 5xx) are retried with exponential backoff (or the
server's ``Retry-After``, capped); other 4xx answers and malformed JSON fail at once with the
server's message and the URL.

A server's reply is untrusted, and every read is bounded: a total deadline per attempt
(``timeout_s``), bytes per server-sent event and per reply, and the reply's length in tokens and
characters (``max_tokens`` is enforced here too, not only asked of the server). A reply counts as
complete only when it says how it finished (a finish reason, or ``[DONE]`` on a stream); anything
else is a :class:`ServerError`, so a partial reply is never recorded as a draft.

Over 400 lines because one request's life (semaphore, retries with backoff, deadline, streamed and
whole bodies read against their bounds) is one piece of control flow; the rules on what a reply
may contain are :mod:`redraft.agents.replies`'.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, NamedTuple, TypeVar

import httpx
from pydantic import ValidationError

from redraft.agents.base import (
    LLM,
    Completion,
    Conversation,
    SamplingParams,
    chat_messages,
    label_mass,
    template_token_count,
)
from redraft.agents.replies import (
    TOP_LOGPROBS,
    ModelList,
    ReplyBound,
    ServerError,
    check_key_destination,
    decode,
    error_message,
    finish_reason,
    first_token_logprobs,
    is_loopback,
    json_object,
    retry_after_s,
    usage_count,
)
from redraft.agents.tracing import token_sink
from redraft.errors import InputError

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_REPLY_BYTES",
    "TOP_LOGPROBS",
    "OpenAICompatLLM",
    "ServerError",
    "raw_chunks",
    "sse_lines",
]

T = TypeVar("T")
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

MAX_EVENT_BYTES = 1 << 20
"""Most bytes in one server-sent-event line: a token's delta is well under a kilobyte."""
MAX_REPLY_BYTES = 32 << 20
"""Most bytes in one reply, streamed or not (a non-streamed reply is read in chunks against it)."""


class _Retry(NamedTuple):
    """A transient failure: why, and how long the server asked to wait (``Retry-After``)."""

    why: str
    after_s: float | None = None


class OpenAICompatLLM(LLM):
    """Chat generation through ``POST {base_url}/chat/completions``.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` for ``vllm serve``.
        model: the served model name sent in every request (recorded as the run's model id).
        api_key: bearer token; defaults to ``$OPENAI_API_KEY``; ``""`` sends none. A key goes to a
            plain-http URL only on loopback, unless ``$REDRAFT_ALLOW_PLAIN_HTTP_KEY`` is ``1``.
        max_concurrency: most requests in flight at once.
        timeout_s: deadline of one attempt at a request, the whole reply included (a server that
            drips a stream forever is cut off here).
        max_retries: retries of a transient failure before giving up.
        backoff_s: first retry delay; doubled each retry, with jitter.
        context_length: the model's context; ``max_model_len`` from ``/models`` when the server
            reports it (vLLM does), else 8192.
        tokenizer: optional local Hugging Face tokenizer (path or cached id) with the served
            model's chat template. With it, ``count_tokens`` is exact and completions carry token
            ids; without it, prompts are estimated at one token per 3 bytes (an over-count for
            English, so length checks err on the safe side) and token ids are empty.

    Example:
        >>> url, model = "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct"
        >>> llm = OpenAICompatLLM(url, model)  # needs: a running server  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        context_length: int | None = None,
        tokenizer: str | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {base_url!r}")
        if max_concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise InputError("max_concurrency must be >= 1, max_retries >= 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        check_key_destination(self.base_url, bool(self.api_key))
        self.max_concurrency, self.timeout_s = max_concurrency, timeout_s
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self._context_length = context_length
        self._tokenizer: Any = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            from redraft._hf import from_pretrained

            self._tokenizer = from_pretrained(AutoTokenizer, tokenizer)

    # -- contract ----------------------------------------------------------------------------------

    @functools.cached_property
    def _ssl(self) -> ssl.SSLContext:
        # Built once: loading the CA bundle costs ~40 ms, and each batch opens a new client
        # (an async client belongs to the event loop of its batch).
        return ssl.create_default_context()

    @property
    def context_length(self) -> int:
        if self._context_length is None:
            self._context_length = self._served_context_length() or 8192
        return self._context_length

    def count_tokens(self, conversation: Conversation) -> int:
        if self._tokenizer is not None:
            return template_token_count(self._tokenizer, conversation)
        return sum(len(m["content"].encode()) // 3 + 8 for m in conversation)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        if logits_processors:
            raise InputError(
                "logits processors cannot run over HTTP: they need the logits inside the engine. "
                "Use the in-process backend (--backend vllm or transformers) for Prov-Decode."
            )
        bodies = [self.request(c, params) for c in conversations]
        answers = _run(self._post_all(bodies, token_sink()))
        return [self._completion(data, body) for data, body in zip(answers, bodies, strict=True)]

    def label_probs(
        self, conversations: Sequence[Conversation], labels: Sequence[str]
    ) -> list[dict[str, float]] | None:
        """One-token requests with ``logprobs`` and ``top_logprobs=20``; ``None`` when the server
        returns no log-probabilities (then critics parse text instead)."""
        if not conversations:
            return []
        one = SamplingParams(max_new_tokens=1)
        bodies = [{**self.request(c, one), "logprobs": True, "top_logprobs": TOP_LOGPROBS} for c in conversations]
        out = []
        for data in _run(self._post_all(bodies)):
            top = first_token_logprobs(data)
            if top is None:
                return None
            out.append(label_mass(top, labels))
        return out

    # -- requests ----------------------------------------------------------------------------------

    def request(self, conversation: Conversation, params: SamplingParams) -> dict[str, Any]:
        """The chat-completions request body for one conversation.

        Example:
            >>> llm = OpenAICompatLLM("http://127.0.0.1:8000/v1", "m", context_length=4096)
            >>> body = llm.request([{"role": "user", "content": "Hi"}], SamplingParams(max_new_tokens=5, stop=("\\n",)))
            >>> body["max_tokens"], body["temperature"], body["stop"]
            (5, 0.0, ['\\n'])
        """
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": chat_messages(conversation),
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p if params.temperature > 0 else 1.0,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def _headers(self) -> dict[str, str]:
        # identity only: a compressed body is decoded by httpx a whole network chunk at a time,
        # before any byte count of ours could stop it (a 30 KB zstd reply became 1.96 GB).
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _client(self) -> httpx.AsyncClient:
        """The client of one batch. To a loopback server it ignores ``HTTP(S)_PROXY``: a proxy
        would carry the key, in clear text on plain http, off this machine."""
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            headers=self._headers(),
            verify=self._ssl,
            trust_env=not is_loopback(self.base_url),
        )

    async def _post_all(
        self, bodies: list[dict[str, Any]], sink: Callable[[int, str], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every request concurrently, at most ``max_concurrency`` in flight. With ``sink``, each
        is streamed (server-sent events) and its text sent to ``sink(i, piece)`` as it arrives."""
        limit = asyncio.Semaphore(self.max_concurrency)
        async with self._client() as client:

            async def one(i: int, body: dict[str, Any]) -> dict[str, Any]:
                async with limit:
                    if sink is None:
                        return await self._post(client, body)
                    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
                    return await self._post(client, streamed, lambda piece: sink(i, piece))

            return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))

    async def _post(
        self, client: httpx.AsyncClient, body: dict[str, Any], on_piece: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        last = _Retry("")
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())  # jitter: no stampede
                await asyncio.sleep(max(delay, last.after_s or 0.0))
            sent: list[bool] = [False]  # whether text reached on_piece (a retry would send it twice)
            try:
                async with asyncio.timeout(self.timeout_s):
                    if on_piece is not None:
                        outcome = await self._post_stream(client, url, body, on_piece, sent)
                    else:
                        outcome = await self._post_once(client, url, body)
            except TimeoutError:
                if sent[0]:
                    raise ServerError(
                        f"{url} did not finish a streamed reply within timeout_s={self.timeout_s:g} s, after part "
                        "of it; the part is not kept. Raise timeout_s if the server is just slow."
                    ) from None
                outcome = _Retry(f"no complete reply within timeout_s={self.timeout_s:g} s")
            if isinstance(outcome, dict):
                return outcome
            last = outcome
        raise ServerError(
            f"could not get a completion from {url} after {self.max_retries + 1} attempts (last: {last.why}). "
            "Check that the server is running (e.g. `vllm serve MODEL`) and the URL is right."
        )

    async def _post_once(self, client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any] | _Retry:
        """One plain request: the answer, or why it may be retried. The body is read in chunks
        against :data:`MAX_REPLY_BYTES`, never whole into memory first."""
        try:
            async with client.stream("POST", url, json=body) as response:
                raw = await _read(url, response)
        except httpx.TransportError as exc:  # refused, reset, timed out
            return _Retry(_transport(exc))
        if (retry := _failed(url, response, raw)) is not None:
            return retry
        return json_object(url, raw)

    async def _post_stream(
        self,
        client: httpx.AsyncClient,
        url: str,
        body: dict[str, Any],
        on_piece: Callable[[str], None],
        sent: list[bool],
    ) -> dict[str, Any] | _Retry:
        """One streamed request: the answer in the non-streamed shape, or why it may be retried.
        Once text has been passed on (``sent[0]``), a failure is final: a retry would send it twice.
        The stream must end with a finish reason or ``[DONE]``, and stay within the reply's bounds."""
        pieces: list[str] = []
        bound = ReplyBound(url, int(body["max_tokens"]))
        try:
            async with client.stream("POST", url, json=body) as response:
                # An error's body names the problem.
                if not response.is_success and (retry := _failed(url, response, await _read(url, response))):
                    return retry
                reason, usage, done, events = None, None, False, 0
                async for line in sse_lines(url, raw_chunks(url, response)):
                    if line.startswith(":") or line.split(":", 1)[0] in ("event", "id", "retry"):
                        continue  # comments and the other SSE fields
                    if not line.startswith("data:"):
                        raise ServerError(
                            f"{url} answered stream=true with something that is not a server-sent event stream "
                            f"({line[:80]!r}); the server may not support streaming"
                        )
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    events += 1
                    try:
                        event = json.loads(payload)
                        usage = event.get("usage") or usage
                        for choice in event.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content") or ""
                            reason = choice.get("finish_reason") or reason
                            if not isinstance(piece, str):
                                raise TypeError(f"delta.content is a {type(piece).__name__}, not text")
                            if piece:
                                bound.add(piece)
                                pieces.append(piece)
                                sent[0] = True
                                on_piece(piece)
                    except (json.JSONDecodeError, AttributeError, TypeError, RecursionError) as exc:
                        raise ServerError(
                            f"{url} sent a malformed stream event ({exc}): {payload[:200]!r}; "
                            "is this an OpenAI-compatible server?"
                        ) from exc
        except httpx.TransportError as exc:
            if pieces:
                raise ServerError(f"{url} broke off a streamed reply ({_transport(exc)}) after part of it") from exc
            return _Retry(_transport(exc))
        if reason is None and not done:
            raise ServerError(
                f"{url} ended a streamed reply after {events} event(s) without a finish reason or [DONE]; "
                "the reply may be cut short, so it is not recorded"
            )
        message = {"role": "assistant", "content": "".join(pieces)}
        return {"choices": [{"message": message, "finish_reason": reason or "stop"}], "usage": usage or {}}

    def _completion(self, data: dict[str, Any], body: dict[str, Any]) -> Completion:
        url = f"{self.base_url}/chat/completions"
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"{url} answered without choices[0].message.content: {json.dumps(data)[:200]}") from exc
        if not isinstance(text, str):
            raise ServerError(f"{url} answered with content of type {type(text).__name__}, not text")
        finish = finish_reason(url, reason)
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        completion_tokens = usage_count(usage.get("completion_tokens"))
        bound = ReplyBound(url, int(body["max_tokens"]))
        bound.add(text, events=0)
        bound.reported(completion_tokens)
        token_ids: tuple[int, ...] = ()
        if self._tokenizer is not None:
            token_ids = tuple(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        return Completion(
            text=text,
            token_ids=token_ids,
            finish_reason=finish,
            prompt_tokens=usage_count(usage.get("prompt_tokens")) or 0,
            completion_tokens=len(token_ids) if token_ids else completion_tokens,
        )

    def _served_context_length(self) -> int | None:
        """``max_model_len`` of this model from ``GET /models`` (vLLM reports it), under the bounds of
        a chat reply: one deadline for the whole answer, the byte cap, strict UTF-8 and a schema.
        None (the documented default applies) when the server has no such route or is unreachable,
        or does not list the model; a :class:`ServerError` when it answers with something broken."""
        return _run(self._get_context_length())

    async def _get_context_length(self) -> int | None:
        url = f"{self.base_url}/models"
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                self._client() as client,
                client.stream("GET", url) as response,
            ):
                raw = await _read(url, response)
        except TimeoutError:
            raise ServerError(
                f"{url} did not finish its answer within timeout_s={self.timeout_s:g} s; pass context_length "
                "to skip the lookup, or raise timeout_s if the server is just slow"
            ) from None
        except httpx.TransportError:
            return None
        if not response.is_success:
            return None  # not every server has /models; the default context applies
        try:
            listing = ModelList.model_validate(json_object(url, raw))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise ServerError(
                f"{url} answered with a model list that does not fit the API ({where}: {problem['msg']}); pass "
                "context_length to skip the lookup"
            ) from None
        for entry in listing.data:
            if entry.id == self.model_id and entry.max_model_len is not None:
                return entry.max_model_len
        return None


async def raw_chunks(url: str, response: httpx.Response) -> AsyncIterator[bytes]:
    """A reply's body as the bytes that crossed the wire, never decompressed: redraft asks for
    ``Accept-Encoding: identity``, and a reply in any other encoding is refused before a byte of it
    is read (a compression bomb expands inside the decoder, before any count could stop it)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ServerError(
            f"{url} answered in Content-Encoding {encoding[:60]!r}, which redraft did not ask for (it sends "
            "Accept-Encoding: identity); compressed replies are refused, unread"
        )
    async for chunk in response.aiter_raw():
        yield chunk


async def _read(url: str, response: httpx.Response) -> bytes:
    """A reply's body, read in chunks against :data:`MAX_REPLY_BYTES`, never whole first."""
    raw = bytearray()
    async for chunk in raw_chunks(url, response):
        raw += chunk
        if len(raw) > MAX_REPLY_BYTES:
            raise ServerError(f"{url} sent a reply over {MAX_REPLY_BYTES:,} bytes; it is not read further")
    return bytes(raw)


def _failed(url: str, response: httpx.Response, raw: bytes) -> _Retry | None:
    """None for a success (2xx); why to retry a transient failure (429, 5xx, ...) and the server's
    ``Retry-After``; raises for anything else, which a retry would not change. A redirect's or an
    error's body is never read as an answer."""
    if response.status_code in _RETRY_STATUS:
        return _Retry(f"HTTP {response.status_code}: {error_message(raw)}", retry_after_s(response.headers))
    if 300 <= response.status_code < 400:
        raise ServerError(
            f"{url} answered HTTP {response.status_code} (a redirect, to "
            f"{response.headers.get('Location', '?')[:200]!r}); redirects are not followed: put the final URL in "
            "base_url"
        )
    if not response.is_success:
        raise ServerError(
            f"{url} rejected the request with HTTP {response.status_code}: {error_message(raw)}. "
            "Check the model name and the request parameters."
        )
    return None


async def sse_lines(url: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The lines of a server-sent-event stream, each bounded by :data:`MAX_EVENT_BYTES` and the
    whole by :data:`MAX_REPLY_BYTES` (httpx's ``aiter_lines`` holds a line of any size in memory),
    decoded as strict UTF-8."""
    buffer, total = bytearray(), 0
    async for chunk in chunks:
        total += len(chunk)
        if total > MAX_REPLY_BYTES:
            raise ServerError(f"{url} sent a stream over {MAX_REPLY_BYTES:,} bytes; it is not read further")
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if line:
                yield decode(url, line)
        if len(buffer) > MAX_EVENT_BYTES:
            raise ServerError(f"{url} sent a stream event over {MAX_EVENT_BYTES:,} bytes; it is not read further")
    if buffer.strip():
        yield decode(url, bytes(buffer).rstrip(b"\r"))


def _transport(exc: httpx.TransportError) -> str:
    """A refused, reset or timed-out connection, named for the error message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller is inside an event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}  # "value": T or "error": BaseException

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    value: T = result["value"]
    return value
