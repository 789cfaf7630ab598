"""``redraft serve``: a small read-only ASGI app over a store, paginated and queried per page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode, urlsplit

from redraft._extras import require
from redraft._net import LOOPBACK_NAMES
from redraft.errors import InputError, NotFoundError
from redraft.store.sql import SQLStore
from redraft.view.data import CorpusReader, Filters
from redraft.view.render import STATIC, Links, Target, charts, example_page, home_page, resolve, results_page

PER_PAGE = 50
MAX_INT = 2**63 - 1
"""The largest id or page number SQL can compare against (a bigger one is not found, not a 500)."""
SECURITY_HEADERS = {
    # Scripts only from the server's own files: no inline script or handler, no eval (Vega runs
    # chart expressions through its interpreter). No other origin is loaded, contacted, framed into
    # or framing this page, so injected markup can neither run nor send data anywhere.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Sent with every answer of ``redraft serve``."""


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port, IPv6 brackets or letter case (Starlette's
    own check cuts ``[::1]:8765`` at its first colon, so it refused every IPv6 request).

    Example:
        >>> host_name("[::1]:8765"), host_name("LocalHost:80"), host_name("127.0.0.1"), host_name("a b")
        ('::1', 'localhost', '127.0.0.1', '')
    """
    try:
        return (urlsplit(f"//{header}").hostname or "") if header.isprintable() and " " not in header else ""
    except ValueError:  # a malformed port or bracket
        return ""


def same_origin_path(referer: str | None, netloc: str) -> str:
    """Where the example page's back link goes: the referring page's path on this server, or ``/``
    (a link to another site, taken from a cross-site ``Referer``, is never reflected).

    Example:
        >>> same_origin_path("http://127.0.0.1:8765/r/abc?page=2", "127.0.0.1:8765")
        '/r/abc?page=2'
        >>> same_origin_path("https://evil.example/phish", "127.0.0.1:8765"), same_origin_path(None, "x")
        ('/', '/')
        >>> same_origin_path("http://127.0.0.1:8765//evil.example/", "127.0.0.1:8765")
        '/'
    """
    if not referer:
        return "/"
    try:
        parts = urlsplit(referer)
    except ValueError:
        return "/"
    if parts.netloc != netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def create_app(url: str, *, per_page: int = PER_PAGE, allowed_hosts: Sequence[str] = LOOPBACK_NAMES) -> Any:
    """A Starlette app that shows every run and experiment in the database at ``url``, opened
    read-only (nothing the server does can write to it).

    Requests whose ``Host`` header is not in ``allowed_hosts`` are refused (400), so a web page
    cannot reach a loopback server through DNS rebinding; every answer carries
    :data:`SECURITY_HEADERS`.

    Example:
        >>> import uvicorn  # needs: redraft[view]  # doctest: +SKIP
        >>> app = create_app("sqlite:///redraft.db")  # needs: a redraft database  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1")  # needs: to serve until stopped  # doctest: +SKIP
    """
    require("starlette", "view")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    allowed = {h.strip("[]").lower() for h in allowed_hosts}
    store = SQLStore(url, readonly=True)
    corpus = CorpusReader()  # indexes opened once per server, for span sources
    cached: dict[str, tuple[tuple[int, int], list[dict[str, Any]]]] = {}

    def chart_specs(target: Target) -> list[dict[str, Any]]:
        # The charts read every example; a page must not. They are recomputed only when the
        # experiment has grown (a cheap count), so a running experiment's charts stay current.
        size = store.progress(target.run_ids)
        if target.ident not in cached or cached[target.ident][0] != size:
            cached[target.ident] = (size, charts(store, target.ident))
        return cached[target.ident][1]

    def _page(request: Request) -> int:
        raw = request.query_params.get("page", "1")
        # ASCII digits only: no sign or spaces, and not "²", which isdigit() accepts and int() refuses.
        page = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else 0
        if not 1 <= page <= MAX_INT:
            raise InputError(f"page must be a positive integer (at most {MAX_INT}), got {raw[:40]!r}")
        return page

    def home(request: Request) -> Response:
        links = Links(home_url="/", static_url="/static", results_url=lambda ident: f"/r/{ident}")
        return HTMLResponse(home_page(store, page=_page(request), per_page=per_page, links=links))

    def results(request: Request) -> Response:
        ident = request.path_params["ident"]
        target = resolve(store, ident)
        filters = Filters.parse(dict(request.query_params))
        query = {k: v for k, v in asdict(filters).items() if v}
        links = Links(
            home_url="/",
            page_url=f"/r/{ident}",
            static_url="/static",
            example_url=lambda example_id: f"/example/{example_id}",
            page_link=lambda n: f"/r/{ident}?" + urlencode({**query, "page": n}),
        )
        page = results_page(
            store,
            target,
            filters,
            page=_page(request),
            per_page=per_page,
            static=False,
            links=links,
            corpus=corpus,
            chart_specs=chart_specs(target),
        )
        return HTMLResponse(page)

    def example(request: Request) -> Response:
        example_id = request.path_params["example_id"]
        if example_id > MAX_INT:
            raise NotFoundError(f"no example {str(example_id)[:40]}")
        back = same_origin_path(request.headers.get("referer"), request.url.netloc)
        links = Links(home_url="/", static_url="/static", back_url=back)
        return HTMLResponse(example_page(store, example_id, links=links, corpus=corpus))

    def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse(f"<h1>Not found</h1><p>{html.escape(str(exc))}</p>", status_code=404)

    def bad_request(request: Request, exc: Exception) -> Response:
        return HTMLResponse(f"<h1>Bad request</h1><p>{html.escape(str(exc))}</p>", status_code=400)

    async def secure(request: Request, call_next: Any) -> Response:
        if host_name(request.headers.get("host", "")) not in allowed:
            response: Response = PlainTextResponse("Invalid host header", status_code=400)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    static = StaticFiles(directory=str(STATIC))
    return Starlette(
        routes=[
            Route("/", home),
            Route("/r/{ident}", results),
            Route("/example/{example_id:int}", example),
            Mount("/static", static, name="static"),
        ],
        exception_handlers={LookupError: not_found, InputError: bad_request},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=secure)],
    )
