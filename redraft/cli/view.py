"""``redraft view`` and ``redraft serve``: runs and experiments in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from redraft._db import DEFAULT_FILE, db_url, redact
from redraft.cli._common import DbOpt, app, cli_errors, console, open_store
from redraft.errors import InputError


@app.command("view")
@cli_errors
def view_command(
    ident: Annotated[str, typer.Argument(help="A run or experiment id (or a unique prefix).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("trace.html"),
    db: DbOpt = DEFAULT_FILE,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Most examples written in full (default: the view's STATIC_LIMIT).", min=1),
    ] = None,
) -> None:
    """Write one self-contained HTML page for a run or experiment (no network; opens from disk)."""
    from redraft._atomic import atomic_file
    from redraft.view import render_static

    store = open_store(db, readonly=True)
    page = render_static(store, ident) if limit is None else render_static(store, ident, limit=limit)
    with atomic_file(out) as f:
        f.write(page)
    console.print(f"wrote {out} ({len(page.encode()) / 1e3:,.0f} kB); open it in any browser, offline")


@app.command("serve")
@cli_errors
def serve_command(
    db: DbOpt = DEFAULT_FILE,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; loopback unless you mean to share it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    public: Annotated[
        bool,
        typer.Option("--public", help="Allow binding beyond loopback (serves every draft, unauthenticated)."),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="A Host header to accept besides the bound host and loopback (repeatable)."),
    ] = None,
) -> None:
    """Browse every run and experiment in a database (read-only, paginated) at http://HOST:PORT/."""
    from redraft._extras import require
    from redraft._net import LOOPBACK_NAMES, is_loopback_host
    from redraft.view import create_app, serving

    require("uvicorn", "view")
    if not is_loopback_host(host) and not public:
        raise InputError(
            f"--host {host} would serve every prompt and draft in {redact(db)} to anyone who can reach this machine, "
            "with no authentication. Add --public if that is what you mean; keep the default 127.0.0.1 otherwise."
        )
    hosts = [*LOOPBACK_NAMES, *(allow_host or [])]
    if host not in ("0.0.0.0", "::"):  # a wildcard bind is no name a browser sends
        hosts.append(host)
    if not is_loopback_host(host):
        console.print(
            f"[bold red]warning:[/] serving {escape(redact(db))} beyond loopback, unauthenticated, to any client that "
            f"reaches port {port}. Accepted Host headers: {escape(', '.join(hosts))} (--allow-host adds more)."
        )
    application = create_app(db_url(db), allowed_hosts=hosts)
    console.print(f"serving {escape(redact(db))} read-only at http://{serving.url_host(host)}:{port}/ (Ctrl-C stops)")
    serving.serve(application, host, port)
