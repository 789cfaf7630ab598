"""LangGraph checkpoints that hold only JSON, so loading one can never run code.

LangGraph's default serializer revives Python objects from a checkpoint: msgpack extension
types name a module and a constructor to import, and its pickle fallback unpickles. A
checkpoint file is data a user may be handed (a shared run, a copied directory), so a crafted one
would run arbitrary code on ``redraft run --resume``. The correction state is plain JSON by
design (:mod:`redraft.graphs.state`), so redraft's checkpointers use
:class:`StrictJSONSerializer`: JSON in, JSON out, and every other payload type refused.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redraft.errors import InputError

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver


class CheckpointError(InputError):
    """A checkpoint holds something other than redraft's plain JSON."""


class StrictJSONSerializer:
    """A LangGraph ``SerializerProtocol`` that writes and reads plain JSON only.

    Nothing is imported or unpickled on load: ``json.loads`` gives dicts, lists, strings,
    numbers, booleans and ``None``. It constructs two objects, each from a fixed tagged shape
    whose fields are plain JSON: LangGraph's own ``Interrupt`` (a pause of the ``human`` critic),
    and :class:`CheckpointedError` for an exception a node raised (LangGraph writes it to its
    ``__error__`` channel; ``get_state().tasks[i].error`` shows it). A tuple comes back as a list:
    JSON has no tuple.

    Example:
        >>> serde = StrictJSONSerializer()
        >>> serde.loads_typed(serde.dumps_typed({"rounds": [1, 2], "final": None}))
        {'rounds': [1, 2], 'final': None}
        >>> serde.loads_typed(serde.dumps_typed(RuntimeError("critic backend down")))
        RuntimeError('critic backend down')
        >>> serde.loads_typed(("pickle", b"cos\\nsystem\\n(S'echo owned'\\ntR."))
        Traceback (most recent call last):
        ...
        redraft.graphs.checkpoint.CheckpointError: a checkpoint holds a 'pickle' payload; ...
    """

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if obj is None:
            return "null", b""
        try:
            return "json", json.dumps(obj, ensure_ascii=False, default=_encode).encode()
        except (TypeError, ValueError) as exc:
            # Not necessarily the state: LangGraph also checkpoints node outputs and task writes.
            raise CheckpointError(
                f"a checkpoint write cannot be stored as plain JSON ({exc}); redraft checkpoints store JSON "
                "only, so keep custom objects out of the graph state and node outputs"
            ) from exc

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, payload = data
        if kind == "null":
            return None
        if kind == "json":
            try:
                return json.loads(payload, object_hook=_decode)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise CheckpointError(f"a checkpoint's JSON payload is corrupt ({exc}); {_FIX}") from exc
        raise CheckpointError(f"a checkpoint holds a {kind!r} payload; redraft reads only its own JSON. {_FIX}")


class CheckpointedError(Exception):
    """An exception a node raised, as read back from a checkpoint: its type's name and its
    message, never the original class (which loading would have to import).

    Example:
        >>> CheckpointedError("ValueError", "bad draft")
        ValueError('bad draft')
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name, self.message = type_name, message

    def __repr__(self) -> str:
        return f"{self.type_name}({self.message!r})"


_INTERRUPT = "__redraft_interrupt__"
_ERROR = "__redraft_error__"


def _encode(obj: Any) -> Any:
    from langgraph.types import Interrupt

    if isinstance(obj, Interrupt):
        return {_INTERRUPT: {"value": obj.value, "id": obj.id}}
    if isinstance(obj, CheckpointedError):
        return {_ERROR: {"type": obj.type_name, "message": obj.message}}
    if isinstance(obj, Exception):
        return {_ERROR: {"type": type(obj).__name__, "message": str(obj)}}
    raise TypeError(f"a value of type {type(obj).__name__}")


def _tagged(obj: dict[str, Any], tag: str, fields: set[str]) -> dict[str, Any] | None:
    inner = obj.get(tag)
    return inner if set(obj) == {tag} and isinstance(inner, dict) and set(inner) == fields else None


def _decode(obj: dict[str, Any]) -> Any:
    if (pause := _tagged(obj, _INTERRUPT, {"value", "id"})) is not None:
        from langgraph.types import Interrupt

        return Interrupt(value=pause["value"], id=str(pause["id"]))
    if (error := _tagged(obj, _ERROR, {"type", "message"})) is not None:
        return CheckpointedError(str(error["type"]), str(error["message"]))
    return obj


_FIX = (
    "The checkpoint file was written by something else (or an older redraft) or was tampered with; "
    "delete it (the run log in the database is unaffected) and resume at example granularity"
)


def checkpoint_path(database: str | Path) -> Path:
    """Where the LangGraph checkpoints of a SQLite run log live: beside it."""
    return Path(database).with_suffix(".checkpoints.sqlite")


def _threaded_async(base: type) -> type:
    """``base`` (a sync LangGraph saver) with its async methods run in a worker thread, so one
    saver serves ``graph.invoke`` and ``graph.ainvoke`` alike (LangGraph's ``SqliteSaver`` raises
    ``NotImplementedError`` from every async method). The saver's own lock serializes the calls."""

    class Threaded(base):  # type: ignore[misc]
        async def aget_tuple(self, config: Any) -> Any:
            return await asyncio.to_thread(self.get_tuple, config)

        async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
            for item in await asyncio.to_thread(lambda: list(self.list(config, **kwargs))):
                yield item

        async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

        async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
            await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

        async def adelete_thread(self, thread_id: str) -> None:
            await asyncio.to_thread(self.delete_thread, thread_id)

    Threaded.__name__ = Threaded.__qualname__ = f"Strict{base.__name__}"
    return Threaded


@contextmanager
def sqlite_checkpointer(path: str | Path) -> Iterator[SqliteSaver]:
    """A LangGraph ``SqliteSaver`` on ``path`` with the strict JSON serializer.

    Example:
        >>> import tempfile, pathlib
        >>> with sqlite_checkpointer(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite") as saver:
        ...     type(saver.serde).__name__
        'StrictJSONSerializer'
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        yield _threaded_async(SqliteSaver)(conn, serde=StrictJSONSerializer())
    finally:
        conn.close()


@contextmanager
def postgres_checkpointer(store_url: str) -> Iterator[PostgresSaver]:
    """A LangGraph ``PostgresSaver`` with the strict JSON serializer, in the database of a
    PostgreSQL run log (its own tables, made on first use). Needs ``redraft[postgres]``.

    Example:
        >>> with postgres_checkpointer(url) as saver:  # needs: a PostgreSQL server  # doctest: +SKIP
        ...     type(saver.serde).__name__
        'StrictJSONSerializer'
    """
    from redraft._extras import require

    require("langgraph.checkpoint.postgres", "postgres")
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row
    from sqlalchemy.engine import make_url

    # psycopg takes a libpq URL: SQLAlchemy's "postgresql+psycopg://" names its driver too.
    dsn = make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with Connection.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        saver = _threaded_async(PostgresSaver)(conn, serde=StrictJSONSerializer())
        saver.setup()
        yield saver
