"""LangGraph checkpoints that hold only JSON, so loading one can never run code.

LangGraph's default serializer revives Python objects from a checkpoint: msgpack extension
types name a module and a constructor to import, and its pickle fallback unpickles. A
checkpoint file is data a user may be handed (a shared run, a copied directory), so a crafted one
would run arbitrary code on ``redraft run --resume``. The correction state is plain JSON by
design (:mod:`redraft.graphs.state`), so redraft's checkpointers use
:class:`StrictJSONSerializer`: JSON in, JSON out, and every other payload type refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redraft.errors import InputError

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver


class CheckpointError(InputError):
    """A checkpoint holds something other than redraft's plain JSON."""


class StrictJSONSerializer:
    """A LangGraph ``SerializerProtocol`` that writes and reads plain JSON only.

    Nothing is imported or unpickled on load: ``json.loads`` gives dicts, lists, strings,
    numbers, booleans and ``None``. The one object it constructs is LangGraph's own ``Interrupt``
    (a pause of the ``human`` critic), from a fixed tagged shape whose value is itself plain JSON.

    Example:
        >>> serde = StrictJSONSerializer()
        >>> serde.loads_typed(serde.dumps_typed({"rounds": [1, 2], "final": None}))
        {'rounds': [1, 2], 'final': None}
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
            raise CheckpointError(
                f"the graph state holds a value that is not plain JSON ({exc}); redraft checkpoints store JSON "
                "only, so keep custom objects out of the state"
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


_INTERRUPT = "__redraft_interrupt__"


def _encode(obj: Any) -> Any:
    from langgraph.types import Interrupt

    if isinstance(obj, Interrupt):
        return {_INTERRUPT: {"value": obj.value, "id": obj.id}}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {_INTERRUPT} and isinstance(obj[_INTERRUPT], dict) and set(obj[_INTERRUPT]) == {"value", "id"}:
        from langgraph.types import Interrupt

        return Interrupt(value=obj[_INTERRUPT]["value"], id=str(obj[_INTERRUPT]["id"]))
    return obj


_FIX = (
    "The checkpoint file was written by something else (or an older redraft) or was tampered with; "
    "delete it (the run log in the database is unaffected) and resume at example granularity"
)


def checkpoint_path(database: str | Path) -> Path:
    """Where the LangGraph checkpoints of a SQLite run log live: beside it."""
    return Path(database).with_suffix(".checkpoints.sqlite")


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
        yield SqliteSaver(conn, serde=StrictJSONSerializer())
    finally:
        conn.close()
