"""Reading JSONL inputs with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redraft.errors import InputError

MAX_LINE_BYTES = 16 << 20
"""The longest JSONL line read (a prompt with its labels is kilobytes)."""


def read_objects(path: Path, field: str | None, example: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for every non-blank line; every object needs a string ``field``
    (when one is named).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
        >>> _ = p.write_text('{"prompt": "hi"}\\n\\n')
        >>> list(read_objects(p, "prompt", '{"prompt": "..."}'))
        [(1, {'prompt': 'hi'})]
    """
    if not path.is_file():
        raise InputError(f"{path} does not exist; pass a JSONL file with one {example} per line")
    with path.open("rb") as f:
        n = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):  # bounded: a 300 MB line is never held whole
            n += 1
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(
                    f"{path}:{n} is over {MAX_LINE_BYTES:,} bytes; one line holds one prompt or row, not a corpus"
                )
            yield from _object(path, n, raw, field, example)


def _object(path: Path, n: int, raw: bytes, field: str | None, example: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        line = raw.decode("utf-8-sig" if n == 1 else "utf-8")  # a BOM may open the file
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}:{n} is not valid UTF-8 (byte {exc.start + 1} of the line); save the file as UTF-8"
        ) from exc
    if line.strip():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(f"{path}:{n} is not valid JSON ({msg})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n} is not a JSON object; write one object per line, e.g. {example}")
        if field is not None and not isinstance(row.get(field), str):
            raise InputError(f"{path}:{n} needs a string field {field!r}, e.g. {example}")
        yield n, row
