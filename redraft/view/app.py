"""``redraft serve``: a small read-only ASGI app over a store, paginated and queried per page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

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
    # Inline scripts and eval stay allowed: the pages carry their own small scripts, and Vega
    # compiles chart expressions with Function(). Everything else is closed: no other origin is
    # loaded, contacted, framed into or framing this page, so injected markup has nowhere to send data.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Sent with every answer of ``redraft serve``."""


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
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

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
        links = Links(home_url="/", results_url=lambda ident: f"/r/{ident}")
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
        links = Links(home_url="/", back_url=request.headers.get("referer") or "/")
        return HTMLResponse(example_page(store, example_id, links=links, corpus=corpus))

    def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse(f"<h1>Not found</h1><p>{html.escape(str(exc))}</p>", status_code=404)

    def bad_request(request: Request, exc: Exception) -> Response:
        return HTMLResponse(f"<h1>Bad request</h1><p>{html.escape(str(exc))}</p>", status_code=400)

    async def secure(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
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
        middleware=[
            Middleware(BaseHTTPMiddleware, dispatch=secure),  # outermost: the host refusal gets the headers too
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        ],
    )
