"""SQL logging of runs, rounds and critiques: the record's contract (:mod:`redraft.store.base`),
its tables and the recorder (:mod:`redraft.store.sql`)."""

from redraft.store.base import ExampleInfo, OutcomeInfo, Recorder, RoundRecord, RunInfo
from redraft.store.sql import DEFAULT_URL, SQLStore

__all__ = ["DEFAULT_URL", "ExampleInfo", "OutcomeInfo", "Recorder", "RoundRecord", "RunInfo", "SQLStore"]
