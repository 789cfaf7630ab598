"""``python -m redraft``: the command line (used to spawn experiment workers)."""

from redraft.cli import app

app()
