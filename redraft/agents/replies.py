"""What a chat server's reply may be, checked without the HTTP client: its JSON (strict UTF-8,
bounded depth), the ``/models`` listing, first-token log-probabilities, ``Retry-After``, the
length bounds of a reply, its finish reason and usage counts, and where an API key may go. Every
rule here raises :class:`ServerError` (or :class:`~redraft.errors.InputError` for the user's
own settings), so a malformed or partial reply is never recorded as a draft."""

from __future__ import annotations

import email.utils
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from redraft._net import is_loopback_host
from redraft.agents.base import FinishReason
from redraft.errors import InputError, RedraftError


class ServerError(RedraftError):
    """The server could not be reached, or answered with an error or malformed JSON."""


MAX_CHARS_PER_TOKEN = 256
"""A reply longer than ``max_tokens`` × this many characters cannot be ``max_tokens`` tokens long."""
MAX_RETRY_AFTER_S = 60.0
"""The longest a server's ``Retry-After`` may make one retry wait."""
PLAIN_HTTP_KEY_ENV = "REDRAFT_ALLOW_PLAIN_HTTP_KEY"
"""Set to ``1`` to send an API key over plain http to a host that is not loopback."""
FINISHED = {"stop": "stop", "eos": "stop", "length": "length"}
"""Finish reasons of a complete reply, as redraft records them. Others (``abort``,
``content_filter``, none at all) mean the text is not the model's whole answer."""


MAX_CONTEXT_LENGTH = 1 << 24
"""The largest context a server may report (16 M tokens); more is a lie, not a model."""


class ServedModel(BaseModel):
    """One entry of ``GET /models``; fields redraft does not read are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: StrictStr
    max_model_len: StrictInt | None = Field(default=None, ge=16, le=MAX_CONTEXT_LENGTH)


class ModelList(BaseModel):
    """The answer of ``GET /models`` (OpenAI's list object)."""

    model_config = ConfigDict(extra="ignore")

    data: list[ServedModel]


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
        if isinstance(top, list) and len(top) > TOP_LOGPROBS + 1:  # the sampled token may come on top
            raise ServerError(
                f"the server sent {len(top):,} alternatives for one position; redraft asked for {TOP_LOGPROBS}, "
                "so this reply is not read as a verdict"
            )
        pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    for token, logprob in pairs:
        # A log-probability is finite and <= 0; exp() of 1000 overflows, and NaN would make a
        # definite verdict out of nothing. Rounding can leave a hair above 0.
        if not math.isfinite(logprob) or logprob > LOGPROB_SLACK:
            raise ServerError(
                f"the server sent log-probability {logprob!r} for token {token[:40]!r}; a log-probability is a "
                "finite number <= 0, so this reply is not read as a verdict"
            )
    # Alternatives are disjoint events: their probabilities sum to at most 1. More means the same
    # token listed twice (or invented mass), which would inflate a label's probability.
    if sum(math.exp(min(lp, 0.0)) for _, lp in pairs) > 1.0 + LOGPROB_SLACK * len(pairs) + 1e-6:
        raise ServerError(
            "the server sent alternatives whose probabilities sum to more than 1 (a token listed twice?); "
            "this reply is not read as a verdict"
        )
    return [(token, min(logprob, 0.0)) for token, logprob in pairs]


LOGPROB_SLACK = 1e-4
"""How far above 0 a server's rounding may put a log-probability of (almost) 1."""


def json_object(url: str, raw: bytes) -> dict[str, Any]:
    """A reply's body as a JSON object: strict UTF-8, well-formed, nested no deeper than Python's
    parser can go (deeper is a :class:`ServerError`, not a ``RecursionError``).

    Example:
        >>> json_object("http://127.0.0.1:8000/v1", b'{"data": []}')
        {'data': []}
        >>> try:
        ...     json_object("http://127.0.0.1:8000/v1", b"[" * 100_000 + b"]" * 100_000)
        ... except ServerError as exc:
        ...     print(str(exc).split(";")[0])
        http://127.0.0.1:8000/v1 answered with JSON nested too deeply to read
    """
    text = decode(url, raw)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServerError(
            f"{url} answered with malformed JSON ({exc.msg}): {text[:200]!r}; is this an OpenAI-compatible server?"
        ) from exc
    except RecursionError:
        raise ServerError(f"{url} answered with JSON nested too deeply to read; it is refused") from None
    if not isinstance(data, dict):
        raise ServerError(f"{url} answered with {type(data).__name__}, not a JSON object")
    return data


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds, or an HTTP date), capped at
    :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable.

    Example:
        >>> retry_after_s({"Retry-After": "3"}), retry_after_s({"Retry-After": "86400"}), retry_after_s({})
        (3.0, 60.0, None)
        >>> retry_after_s({"Retry-After": "\u00b2"}) is None
        True
        >>> retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0)
        10.0
    """
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit(), not to float()
        wait = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


class ReplyBound:
    """The bounds of one reply: ``max_tokens`` is enforced here, not only asked of the server.

    Content-bearing stream events carry at least one token each (with slack for servers that
    split a token's text), and no token is longer than :data:`MAX_CHARS_PER_TOKEN` characters.

    Example:
        >>> bound = ReplyBound("http://127.0.0.1:8000/v1", max_tokens=2)
        >>> bound.add("Hello")
        >>> try:
        ...     bound.add("x" * 600)
        ... except ServerError as exc:
        ...     print(str(exc).split("; ")[0])
        http://127.0.0.1:8000/v1 sent a reply longer than max_tokens=2 allows (605 characters)
    """

    def __init__(self, url: str, max_tokens: int) -> None:
        self.url, self.max_tokens = url, max_tokens
        self.chars = self.events = 0

    def add(self, piece: str, events: int = 1) -> None:
        self.chars += len(piece)
        self.events += events
        if self.chars > self.max_tokens * MAX_CHARS_PER_TOKEN:
            self._over(f"{self.chars:,} characters")
        if self.events > 2 * self.max_tokens + 8:
            self._over(f"{self.events:,} pieces")

    def reported(self, completion_tokens: int | None) -> None:
        """The server's own ``usage.completion_tokens``, which must not exceed ``max_tokens``."""
        if completion_tokens is not None and completion_tokens > self.max_tokens:
            self._over(f"usage says {completion_tokens:,} tokens")

    def _over(self, what: str) -> None:
        raise ServerError(
            f"{self.url} sent a reply longer than max_tokens={self.max_tokens} allows ({what}); "
            "it is cut off and not recorded"
        )


def decode(url: str, raw: bytes) -> str:
    """Strict UTF-8: a reply with invalid bytes is refused by name, not repaired silently."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServerError(
            f"{url} sent bytes that are not valid UTF-8 (at byte {exc.start}: {raw[exc.start : exc.start + 4]!r})"
        ) from exc


def finish_reason(url: str, reason: object) -> FinishReason:
    """The finish reason of a complete reply; anything else is an error, not a draft."""
    finish = FINISHED.get(reason) if isinstance(reason, str) else None
    if finish is None:
        raise ServerError(
            f"{url} answered with finish_reason {reason!r}, not one of {sorted(FINISHED)}: the text may not be "
            "the model's whole reply, so it is not recorded"
        )
    return finish  # type: ignore[return-value]


def usage_count(value: object) -> int | None:
    """A token count from ``usage``: a non-negative int, else None (not trusted as a number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine.

    Example:
        >>> is_loopback("http://127.0.0.1:8000/v1"), is_loopback("http://localhost/v1"), is_loopback("http://10.0.0.2/v1")
        (True, True, False)
    """
    return is_loopback_host(urlsplit(url).hostname or "")


def check_key_destination(base_url: str, has_key: bool) -> None:
    """Refuse to send an API key in clear text off this machine: plain http to a host that is not
    loopback needs ``REDRAFT_ALLOW_PLAIN_HTTP_KEY=1`` in the user's own environment (an experiment
    file, which is shared, cannot set it).

    Example:
        >>> check_key_destination("https://api.example.com/v1", True)
        >>> check_key_destination("http://127.0.0.1:8000/v1", True)
        >>> check_key_destination("http://10.0.0.2:8000/v1", False)
    """
    if not has_key or base_url.startswith("https://") or is_loopback(base_url):
        return
    if os.environ.get(PLAIN_HTTP_KEY_ENV) == "1":
        return
    raise InputError(
        f"refusing to send the API key in clear text to {base_url} (plain http, not this machine). Use https, "
        f"or set {PLAIN_HTTP_KEY_ENV}=1 if this network is trusted, or unset the key if the server needs none."
    )


def error_message(raw: bytes) -> str:
    """The server's error message from an error body (OpenAI's ``{"error": {"message": ...}}``)."""
    text = raw.decode("utf-8", errors="replace")  # shown to the user only, never recorded
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        return str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    except (json.JSONDecodeError, RecursionError):  # an error body nested past the parser's depth
        return text[:300]
