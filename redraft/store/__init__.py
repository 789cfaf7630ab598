"""SQL logging of runs, rounds and critiques, and exports for training."""

from redraft.store.base import ExampleInfo, OutcomeInfo, Recorder, RoundRecord, RunInfo
from redraft.store.export import FlameFilter, dpo_pairs, save_to_disk, sft_rows, write_jsonl
from redraft.store.sql import DEFAULT_URL, SQLStore

__all__ = [
    "DEFAULT_URL",
    "ExampleInfo",
    "FlameFilter",
    "OutcomeInfo",
    "Recorder",
    "RoundRecord",
    "RunInfo",
    "SQLStore",
    "dpo_pairs",
    "save_to_disk",
    "sft_rows",
    "write_jsonl",
]
