"""Where the run log lives by default, and how a database URL is shown: constants the command
line needs before it imports SQLAlchemy (``redraft --help`` loads none of it)."""

from __future__ import annotations

DEFAULT_FILE = "redraft.db"
"""The default database: a SQLite file in the working directory, for every command and spec."""
DEFAULT_URL = f"sqlite:///{DEFAULT_FILE}"
DB_ENV = "REDRAFT_DB"
"""The environment variable every ``--db`` option (and every worker process) reads the database
URL from: a command line, and the password in it, would be visible to ``ps``."""


def redact(url: str) -> str:
    """``url`` with its password masked, for messages, logs and stored specs.

    Example:
        >>> redact("postgresql+psycopg://ann:s3cret@db.lab/runs")
        'postgresql+psycopg://ann:***@db.lab/runs'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable as a URL: mask whatever sits between "user:" and "@" all the same.
        head, sep, tail = url.rpartition("@")
        if not sep or "://" not in head:
            return url
        scheme, _, auth = head.partition("://")
        user = auth.split(":", 1)[0]
        return f"{scheme}://{user}:***@{tail}" if ":" in auth else url


def db_url(db: str) -> str:
    """A ``--db`` value as a SQLAlchemy URL: a plain path is a SQLite file.

    Example:
        >>> db_url("runs.db"), db_url("postgresql+psycopg://u@h/db")
        ('sqlite:///runs.db', 'postgresql+psycopg://u@h/db')
    """
    return db if "://" in db else f"sqlite:///{db}"
