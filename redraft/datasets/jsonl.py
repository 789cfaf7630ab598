"""Any JSONL file as a dataset: ``{"prompt", "id"?, "judge"?, "labels"?}`` per line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from redraft._jsonl import read_objects
from redraft.datasets.base import Row
from redraft.errors import InputError

EXAMPLE = '{"prompt": "What is the capital of France?", "judge": "answer", "labels": {"references": ["Paris"]}}'
PROMPT_ONLY = '{"prompt": "What is the capital of France?", "id": "fr"}'


def from_jsonl(path: Path, *, require_judge: bool = True) -> list[Row]:
    """Rows from a JSONL file, keyed by their ``id`` or ``<file stem>:<line>``. ``judge``
    defaults to ``answer`` when ``labels`` has ``references``, ``bbq`` when it has ``options``
    and ``refusal`` when it has ``should_refuse``. A row no judge can label is an error, unless
    ``require_judge`` is False (``redraft run`` corrects prompts that have no ground truth).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "qa.jsonl"
        >>> _ = p.write_text('{"prompt": "Capital of France?", "labels": {"references": ["Paris"]}}\\n')
        >>> from_jsonl(p)[0].labels["judge"]
        'answer'
    """
    example = EXAMPLE if require_judge else PROMPT_ONLY
    rows = []
    for n, obj in read_objects(path, "prompt", example):
        labels = obj.get("labels", {})
        if not isinstance(labels, dict):
            raise InputError(f"{path}:{n}: 'labels' must be an object, e.g. {example}")
        judge = obj.get("judge") or _infer_judge(labels)
        if judge is None and require_judge:
            raise InputError(
                f'{path}:{n}: no judge can label this row; add "judge" and its labels, e.g. {EXAMPLE} '
                'or {"prompt": "...", "labels": {"should_refuse": true}}'
            )
        try:
            rows.append(
                Row(
                    key=str(obj.get("id", f"{path.stem}:{n}")),
                    prompt=obj["prompt"],
                    source=path.stem,
                    labels=labels if judge is None else {**labels, "judge": judge},
                )
            )
        except ValidationError as exc:
            raise InputError(f"{path}:{n}: {exc.errors()[0]['msg']}") from exc
    if not rows:
        raise InputError(f"{path} has no rows; put one JSON object per line, e.g. {example}")
    return rows


def _infer_judge(labels: dict[str, object]) -> str | None:
    for key, judge in (("references", "answer"), ("options", "bbq"), ("should_refuse", "refusal")):
        if key in labels:
            return judge
    return None
