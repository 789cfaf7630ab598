"""The run log as training data: DPO pairs (revision and FLAME recipes) and SFT rows in TRL's
formats, with a provenance column, written atomically as JSONL or a ``datasets`` directory."""

from redraft.export.pairs import EmptyExportError, FlameFilter, dpo_pairs, save_to_disk, sft_rows, write_jsonl

__all__ = ["EmptyExportError", "FlameFilter", "dpo_pairs", "save_to_disk", "sft_rows", "write_jsonl"]
