"""SQL logging of runs, rounds and critiques: the record's contract (:mod:`redraft.store.base`),
its tables and the recorder (:mod:`redraft.store.sql`).

The face is lazy: the record's contract loads without SQLAlchemy; ``SQLStore`` loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft._db import DEFAULT_URL
    from redraft.store.base import ExampleInfo, OutcomeInfo, Recorder, RoundRecord, RunInfo
    from redraft.store.sql import SQLStore

__all__ = ["DEFAULT_URL", "ExampleInfo", "OutcomeInfo", "Recorder", "RoundRecord", "RunInfo", "SQLStore"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "DEFAULT_URL": "redraft._db",
        "SQLStore": "redraft.store.sql",
        **dict.fromkeys(("ExampleInfo", "OutcomeInfo", "Recorder", "RoundRecord", "RunInfo"), "redraft.store.base"),
    },
)
