"""The database plumbing under :class:`~redraft.store.sql.SQLStore`: opening an engine (SQLite
pragmas and file locks, read-only and immutable opens, PostgreSQL), Alembic migrations run once
per database, and the checks that a database is one redraft can read and write. Record mapping
is :mod:`redraft.store.sql`'s."""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)

from redraft._db import redact
from redraft.errors import MissingExtraError, StoreUnavailableError

_MIGRATIONS = Path(__file__).parent / "migrations"


def reason(exc: DBAPIError) -> str:
    """The driver's message on one line, for errors that add the fix."""
    return " ".join(str(exc.orig).split()).rstrip(".?")


def _sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for other databases and for in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    name = url.database
    if name.startswith("file:"):  # a URI filename (?uri=true)
        name = name[len("file:") :].split("?", 1)[0]
    return Path(name)


@contextmanager
def _file_lock(database: Path | None) -> Iterator[None]:
    """An exclusive lock on a sidecar file of a SQLite database (nothing for in-memory ones).

    SQLite's own locks are taken statement by statement, SQLite commits DDL as it goes, and
    switching to WAL does not wait on its busy handler, so first use of a fresh file by several
    processes needs a lock that spans a whole step.
    """
    if database is None:
        yield
        return
    with database.with_name(database.name + ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(database: Path | None) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # Several writers (CLI runs, test threads) may share one file: wait for the lock, don't fail.
        cursor.execute("PRAGMA busy_timeout=30000")
        # WAL lets readers (``redraft show``, progress bars) run beside a writer, and with
        # synchronous=NORMAL a commit needs no fsync: a power cut may lose the last rounds, but
        # never leaves a half-written one (each round is one transaction).
        if database is not None and cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            with _file_lock(database):
                cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def connect(url: str, *, readonly: bool = False) -> Engine:
    """Open ``url`` and check it answers, or raise :class:`StoreUnavailableError` naming the fix.

    ``readonly`` opens an existing database for reading only: a missing SQLite file is an error
    (instead of a new empty database), and nothing is ever written.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailableError(
            f"{redact(url)!r} is not a usable SQLAlchemy URL. "
            "Use e.g. sqlite:///redraft.db or postgresql+psycopg://user:pass@host/db."
        ) from exc
    file = _sqlite_file(parsed)
    kwargs: dict[str, Any] = {}
    if readonly and file is not None:
        if not file.is_file():
            raise StoreUnavailableError(
                f"there is no database at {file}: nothing was logged there. Pass --db with the database your run "
                "or experiment wrote (the default is redraft.db in the current directory)."
            )
        # SQLite opens the file itself read-only, so a reading command can never create or change it.
        parsed = parsed.set(database=f"file:{file}", query={**parsed.query, "mode": "ro", "uri": "true"})
    elif readonly and parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    if parsed.get_backend_name() != "sqlite":
        # A server restarted between two rounds leaves dead connections in the pool: test each
        # one before use instead of failing the next round.
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreUnavailableError(
            f"{redact(url)!r} is not a usable SQLAlchemy URL ({exc}). "
            "Use e.g. sqlite:///redraft.db or postgresql+psycopg://user:pass@host/db."
        ) from exc
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            f"the driver for {redact(url)} is not installed ({exc.name}). "
            'For PostgreSQL: pip install "redraft[postgres]"'
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas_readonly if readonly else _sqlite_pragmas(file))
    try:
        with engine.connect() as probe:
            if readonly and file is not None:
                probe.exec_driver_sql("PRAGMA schema_version")  # reads the file: WAL trouble shows here
    except OperationalError as exc:
        engine.dispose()
        if readonly and file is not None:
            return _immutable_sqlite(parsed, file, exc)
        hint = (
            "check that the directory exists and is writable"
            if engine.dialect.name == "sqlite"
            else "check that the server is running and the host, port, user and database are right"
        )
        raise StoreUnavailableError(
            f"cannot open database {redact(url)}: {reason(exc)}. Fix: {hint}, or pass store=None to run "
            "without logging."
        ) from exc
    return engine


def _immutable_sqlite(parsed: Any, file: Path, exc: OperationalError) -> Engine:
    """A WAL database in a place this user cannot write (a shared directory, a read-only mount)
    cannot be opened even read-only: SQLite must create its ``-shm`` index beside it. When no
    ``-wal`` holds writes the main file lacks, the file alone is the whole database, and SQLite's
    ``immutable`` mode reads it without the index; otherwise reading it would miss those writes,
    so it is refused by name."""
    wal = file.with_name(file.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreUnavailableError(
            f"cannot read {file} here ({reason(exc)}): its write-ahead log {wal.name} holds writes the database "
            "file does not, and this directory is not writable, so SQLite cannot read them. Copy the database "
            "together with its -wal file to a writable directory and read the copy, or let the writing process "
            "finish (it folds the log in when it closes)."
        ) from exc
    engine = create_engine(parsed.update_query_dict({"immutable": "1"}))
    event.listen(engine, "connect", _sqlite_pragmas_readonly)
    try:
        with engine.connect() as probe:
            probe.exec_driver_sql("PRAGMA schema_version")
    except OperationalError as again:
        engine.dispose()
        raise StoreUnavailableError(f"cannot read database {file}: {reason(again)}") from again
    return engine


def _sqlite_pragmas_readonly(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")  # belt and braces beside mode=ro
    cursor.close()


_MIGRATION_LOCK = 0x7265647261667400  # "redraft\0": the PostgreSQL advisory-lock key of migrations


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    """The migration scripts, read once per process (every store open consults them)."""
    return ScriptDirectory.from_config(_config())


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _check_known(revision: str | None, url: str) -> None:
    """Refuse a database migrated by a newer redraft: its schema has columns this code would drop
    on the floor (or tables it cannot read)."""
    if revision is None:
        return
    try:
        known = _script().get_revision(revision) is not None
    except (ResolutionError, CommandError):
        known = False
    if not known:
        raise StoreUnavailableError(
            f"the database {redact(url)} has schema revision {revision!r}, newer than this redraft knows "
            f"(newest: {_script().get_current_head()!r}). Upgrade redraft (pip install -U redraft) to use it."
        )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database).

    Safe when several processes open a fresh database at once: they take a lock (an advisory lock
    on PostgreSQL, a file lock beside the database on SQLite), and all but the first find the
    schema current.
    """
    head = _script().get_current_head()
    with engine.connect() as conn:
        current = _revision(conn)
    _check_known(current, str(engine.url))
    if current == head:
        return
    cfg = _config()
    # The lock is released only after the migration's transaction has committed, so the next
    # process in line sees the finished schema.
    with _file_lock(_sqlite_file(engine.url)), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Held until this transaction ends; the upgrade runs in the same transaction.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        current = _revision(conn)
        _check_known(current, str(engine.url))
        if current == head:  # another process migrated while we waited for the lock
            return
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, "head")
        except CommandError as exc:
            raise StoreUnavailableError(f"cannot migrate {redact(str(engine.url))}: {exc}") from exc


def check_schema(engine: Engine, url: str) -> None:
    """For read-only use: the schema must be exactly this redraft's (reading never migrates)."""
    with engine.connect() as conn:
        current = _revision(conn)
    _check_known(current, url)
    head = _script().get_current_head()
    if current != head:
        raise StoreUnavailableError(
            f"the database {redact(url)} has schema revision {current!r}, older than this redraft's {head!r}; "
            "it is not a redraft database, or was written by an older redraft. Open it once with a writing "
            "command (e.g. redraft run) to upgrade it."
        )


def probe_write(engine: Engine, url: str) -> None:
    """Fail now, not after a model has loaded, when the database cannot be written."""
    try:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
            tx.rollback()
    except DBAPIError as exc:
        engine.dispose()
        raise StoreUnavailableError(
            f"the database {redact(url)} cannot be written ({reason(exc)}). Fix: check the file's permissions and the "
            "filesystem, or that the database user may write; reading commands (show, report, export) work "
            "read-only."
        ) from exc
