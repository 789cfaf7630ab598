"""Any OpenAI-compatible chat-completions server (``vllm serve``, TGI, llama.cpp server, ...).

Requests go out concurrently (bounded by a semaphore) over one async ``httpx`` client. Transient
failures (connection errors, timeouts, 429 and 5xx) are retried with exponential backoff; other
4xx answers and malformed JSON fail at once with the server's message and the URL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import ssl
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import httpx

from redraft.agents.base import (
    LLM,
    Completion,
    Conversation,
    FinishReason,
    SamplingParams,
    chat_messages,
    label_mass,
    template_token_count,
)
from redraft.agents.tracing import token_sink
from redraft.errors import InputError, RedraftError


class ServerError(RedraftError):
    """The server could not be reached, or answered with an error or malformed JSON."""


T = TypeVar("T")
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatLLM(LLM):
    """Chat generation through ``POST {base_url}/chat/completions``.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` for ``vllm serve``.
        model: the served model name sent in every request (recorded as the run's model id).
        api_key: bearer token; defaults to ``$OPENAI_API_KEY`` (vLLM accepts any value).
        max_concurrency: most requests in flight at once.
        timeout_s: per-request timeout.
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
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
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
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    async def _post_all(
        self, bodies: list[dict[str, Any]], sink: Callable[[int, str], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every request concurrently, at most ``max_concurrency`` in flight. With ``sink``, each
        is streamed (server-sent events) and its text sent to ``sink(i, piece)`` as it arrives."""
        limit = asyncio.Semaphore(self.max_concurrency)
        timeout = httpx.Timeout(self.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers(), verify=self._ssl) as client:

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
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: retries don't stampede
            if on_piece is not None:
                outcome = await self._post_stream(client, url, body, on_piece)
            else:
                outcome = await self._post_once(client, url, body)
            if isinstance(outcome, dict):
                return outcome
            last = outcome
        raise ServerError(
            f"could not get a completion from {url} after {self.max_retries + 1} attempts (last: {last}). "
            "Check that the server is running (e.g. `vllm serve MODEL`) and the URL is right."
        )

    async def _post_once(self, client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any] | str:
        """One plain request: the answer, or why it may be retried."""
        try:
            response = await client.post(url, json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out
            return _transport(exc)
        if (retry := _failed(url, response)) is not None:
            return retry
        try:
            data = response.json()
        except json.JSONDecodeError as exc:
            raise ServerError(
                f"{url} answered with malformed JSON ({exc.msg}): {response.text[:200]!r}; "
                "is this an OpenAI-compatible server?"
            ) from exc
        if not isinstance(data, dict):
            raise ServerError(f"{url} answered with {type(data).__name__}, not a JSON object")
        return data

    async def _post_stream(
        self, client: httpx.AsyncClient, url: str, body: dict[str, Any], on_piece: Callable[[str], None]
    ) -> dict[str, Any] | str:
        """One streamed request: the answer in the non-streamed shape, or why it may be retried.
        Once text has been passed on, a failure is final: a retry would send it twice."""
        pieces: list[str] = []
        try:
            async with client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()  # the error body names the problem
                    if (retry := _failed(url, response)) is not None:
                        return retry
                reason, usage = None, None
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        event = json.loads(payload)
                        usage = event.get("usage") or usage
                        for choice in event.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content") or ""
                            reason = choice.get("finish_reason") or reason
                            if piece:
                                pieces.append(piece)
                                on_piece(piece)
                    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
                        raise ServerError(
                            f"{url} sent a malformed stream event ({exc}): {payload[:200]!r}; "
                            "is this an OpenAI-compatible server?"
                        ) from exc
        except httpx.TransportError as exc:
            if pieces:
                raise ServerError(f"{url} broke off a streamed reply ({_transport(exc)}) after part of it") from exc
            return _transport(exc)
        message = {"role": "assistant", "content": "".join(pieces)}
        return {"choices": [{"message": message, "finish_reason": reason or "stop"}], "usage": usage or {}}

    def _completion(self, data: dict[str, Any], body: dict[str, Any]) -> Completion:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            reason = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(
                f"{self.base_url}/chat/completions answered without choices[0].message.content: "
                f"{json.dumps(data)[:200]}"
            ) from exc
        finish: FinishReason = "length" if reason == "length" else "stop"
        token_ids: tuple[int, ...] = ()
        if self._tokenizer is not None:
            token_ids = tuple(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        usage = data.get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        return Completion(
            text=text,
            token_ids=token_ids,
            finish_reason=finish,
            prompt_tokens=int(prompt_tokens) if isinstance(prompt_tokens, int) else 0,
        )

    def _served_context_length(self) -> int | None:
        try:
            response = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=self.timeout_s)
            for entry in response.json().get("data", []):
                if entry.get("id") == self.model_id and isinstance(entry.get("max_model_len"), int):
                    return int(entry["max_model_len"])
        except (httpx.HTTPError, json.JSONDecodeError, AttributeError):
            return None
        return None


TOP_LOGPROBS = 20
"""The most alternatives the OpenAI API returns per position."""


def first_token_logprobs(data: dict[str, Any]) -> list[tuple[str, float]] | None:
    """``(token, logprob)`` of the first generated position's alternatives in a chat-completions
    answer, or ``None`` when the server sent none.

    Example:
        >>> first_token_logprobs({"choices": [{"logprobs": {"content": [
        ...     {"token": "No", "logprob": -0.1, "top_logprobs": [{"token": "No", "logprob": -0.1},
        ...                                                        {"token": "Yes", "logprob": -2.4}]}]}}]})
        [('No', -0.1), ('Yes', -2.4)]
    """
    try:
        top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        return [(str(t["token"]), float(t["logprob"])) for t in top]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _failed(url: str, response: httpx.Response) -> str | None:
    """None for a success; why to retry a transient failure (429, 5xx, ...); raises for a
    request the server rejected, which a retry would not change."""
    if response.status_code in _RETRY_STATUS:
        return f"HTTP {response.status_code}: {_message(response)}"
    if response.status_code >= 400:
        raise ServerError(
            f"{url} rejected the request with HTTP {response.status_code}: {_message(response)}. "
            "Check the model name and the request parameters."
        )
    return None


def _transport(exc: httpx.TransportError) -> str:
    """A refused, reset or timed-out connection, named for the error message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        return str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    except json.JSONDecodeError:
        return response.text[:300]


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
