"""Pages from the view's data and templates: shared by the static file and the server.

Jinja2 with autoescaping on for every template: model text is untrusted, so a draft holding
``<script>`` renders as text. Charts are Vega-Lite specs drawn in the page by the bundled Vega.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redraft._extras import require
from redraft.store.base import CHANGES
from redraft.store.sql import SQLStore
from redraft.view.data import CorpusReader, Filters, choices, example_view, examples_page, listing

STATIC = resources.files("redraft.view").joinpath("static")
"""The bundled Vega builds: inlined by the static file, served by the server."""
CHART_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-interpreter.js")
"""Loaded, in this order, by pages with charts; every page loads ``redraft.js`` after them."""
PAGE_SCRIPT = "redraft.js"


@functools.lru_cache(maxsize=1)
def environment() -> Any:
    """The Jinja2 environment over the package's templates, escaping on by default (built once:
    it keeps the compiled templates)."""
    jinja2 = require("jinja2", "view")
    return jinja2.Environment(
        loader=jinja2.PackageLoader("redraft.view", "templates"),
        autoescape=True,  # every template, whatever its name: model text is untrusted
        undefined=jinja2.StrictUndefined,  # a template that names a missing value fails, never renders blank
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(template: str, **values: Any) -> str:
    return str(environment().get_template(template).render(**values))


@functools.cache
def static_text(name: str) -> str:
    """A bundled static file's text (the Vega builds, the page script)."""
    return STATIC.joinpath(name).read_text(encoding="utf-8")


FILE_POLICY = (
    "default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)
"""The static file's Content-Security-Policy (a ``<meta>`` tag: a file has no headers). Scripts run
only if their hash is listed, which only redraft's own inlined scripts are; nothing is fetched."""


def scripts(*, charts: bool, inline: bool, static_url: str = "") -> dict[str, Any]:
    """The template values that load a page's scripts: ``<script src>`` from ``static_url`` (the
    server, whose policy allows only its own files), or inlined with a policy listing each one's
    SHA-256 (the static file), so injected markup can run no script in either.

    Example:
        >>> [s["src"] for s in scripts(charts=False, inline=False, static_url="/static")["scripts"]]
        ['/static/redraft.js']
        >>> scripts(charts=False, inline=True)["csp"].split("; ")[1]
        "script-src 'sha256-...'"
    """
    names = [*(CHART_SCRIPTS if charts else ()), PAGE_SCRIPT]
    if not inline:
        return {"scripts": [{"src": f"{static_url}/{name}"} for name in names], "csp": None}
    texts = [static_text(name) for name in names]
    hashes = " ".join(f"'sha256-{_sha256(text)}'" for text in texts)
    return {"scripts": [{"text": text} for text in texts], "csp": FILE_POLICY.format(hashes=hashes)}


@functools.cache
def _sha256(text: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class Target:
    """What a results page shows: an experiment or a single run."""

    title: str
    ident: str
    run_ids: list[str]
    run_labels: list[str]
    run_critics: dict[str, list[str]]


def resolve(store: SQLStore, ident: str) -> Target:
    """An experiment or run id (or a unique prefix of one)."""
    title, runs = store.resolve(ident)
    return Target(
        title=title,
        ident=ident,
        run_ids=[r.id for r in runs],
        run_labels=[r.label for r in runs],
        run_critics={r.id: r.critic_names for r in runs},
    )


def charts(store: SQLStore, ident: str) -> list[dict[str, Any]]:
    """The report's two by-round charts as Vega-Lite specs, from the same data as ``report.md``."""
    from redraft.experiments.report import report_data

    data = report_data(store, ident)
    outcome = [
        {"round": k, "rate": v, "series": f"{d.cell} · {d.source} ({d.metric})"}
        for d in data.datasets
        for k, v in enumerate(d.rates)
        if not math.isnan(v)
    ]
    cells = {r.id: r.label for r in data.runs}
    accuracy = [
        {"round": c.round, "accuracy": c.accuracy, "series": f"{cells[c.run_id]} · {c.critic}", "n": c.n}
        for c in data.critic_accuracy(by_round=True, by_source=False)
        if c.n
    ]

    def line(title: str, values: list[dict[str, Any]], y: str) -> dict[str, Any]:
        return {
            "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
            "title": title,
            "width": 360,
            "height": 220,
            "data": {"values": values},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "round", "type": "ordinal", "title": "round"},
                "y": {"field": y, "type": "quantitative", "scale": {"domain": [0, 1]}},
                "color": {"field": "series", "type": "nominal", "legend": {"orient": "bottom", "columns": 1}},
                "tooltip": [{"field": k} for k in values[0]] if values else [],
            },
        }

    out = []
    if outcome:
        out.append(line("Outcome by round (ASR on harmful sets, accuracy elsewhere)", outcome, "rate"))
    if accuracy:
        out.append(line("Critic accuracy by round", accuracy, "accuracy"))
    return out


@dataclass(frozen=True)
class Links:
    """Where a page's links point: the server's routes, or anchors inside the static file."""

    home_url: str = "#"
    page_url: str = ""
    """The results page itself (the filter form submits to it)."""
    static_url: str = ""
    example_url: Callable[[int], str] = lambda example_id: f"#ex-{example_id}"
    page_link: Callable[[int], str] = lambda page: "#"
    results_url: Callable[[str], str] = lambda ident: "#"
    back_url: str = "#"

    def values(self) -> dict[str, Any]:
        return dict(vars(self))


def results_page(
    store: SQLStore,
    target: Target,
    filters: Filters,
    *,
    page: int,
    per_page: int,
    static: bool,
    links: Links,
    corpus: CorpusReader | None = None,
    chart_specs: list[dict[str, Any]] | None = None,
) -> str:
    """A run's or an experiment's page: charts, the filterable table, and (in the static file)
    every example in full below it. ``chart_specs``: charts already computed (the server caches
    them; computing them reads every example)."""
    rows, total = examples_page(store, target.run_ids, filters, page, per_page)
    corpus = corpus or CorpusReader()
    examples = [example_view(store, r.id, corpus) for r in rows] if static else []
    pages = max(1, math.ceil(total / per_page))
    specs = charts(store, target.ident) if chart_specs is None else chart_specs
    return _render(
        "results.html",
        title=target.title,
        subtitle="a correction, round by round",
        runs=target.run_labels,
        charts=specs,
        **scripts(charts=bool(specs), inline=static, static_url=links.static_url),
        static=static,
        rows=rows,
        row_critics={r.id: target.run_critics.get(r.run_id, []) for r in rows},
        total=total,
        page=page,
        pages=pages,
        filters=filters,
        choices=choices(store, target.run_ids, [c for names in target.run_critics.values() for c in names]),
        changes=CHANGES,
        examples=examples,
        **links.values(),
    )


def example_page(store: SQLStore, example_id: int, *, links: Links, corpus: CorpusReader | None = None) -> str:
    """One example on its own page (the server's link target)."""
    ex = example_view(store, example_id, corpus)
    return _render(
        "example.html",
        ex=ex,
        subtitle=ex.run_label,
        **scripts(charts=False, inline=False, static_url=links.static_url),
        **links.values(),
    )


def home_page(store: SQLStore, *, page: int, per_page: int, links: Links) -> str:
    """Experiments and standalone runs, newest first."""
    found = listing(store, page, per_page + 1)  # one extra row says whether there is a next page
    more = len(found.experiments) > per_page or len(found.runs) > per_page
    found.experiments[per_page:] = []
    found.runs[per_page:] = []
    return _render(
        "home.html",
        listing=found,
        page=page,
        more=more,
        subtitle="runs and experiments",
        **scripts(charts=False, inline=False, static_url=links.static_url),
        **links.values(),
    )


STATIC_LIMIT = 2000
"""Most examples a static file holds: every one is written in full, and a browser tab slows past this."""


def render_static(store: SQLStore, ident: str, *, limit: int = STATIC_LIMIT) -> str:
    """One self-contained HTML file for a run or an experiment: no CDN, no network, opens from
    disk. It holds the charts, the table (filtered in the page) and up to ``limit`` examples.

    Example:
        >>> store = SQLStore("sqlite:///redraft.db", readonly=True)  # needs: a database  # doctest: +SKIP
        >>> html = render_static(store, "3f2a")  # needs: a run with this id  # doctest: +SKIP
    """
    target = resolve(store, ident)
    return results_page(store, target, Filters(), page=1, per_page=limit, static=True, links=Links())
