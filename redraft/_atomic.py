"""Write into a temporary place beside the target, then rename it into place.

Every file or directory redraft writes for later reading (an index, a trained verifier, a cached
model or knowledge base, an export, a checkpoint) goes through these two helpers, so a crash or a
kill at any moment leaves either the old target or the new one, never a half-written one. A
replaced directory is moved aside before the new one is renamed in; a kill between those two
renames leaves the old one aside, and the next writer puts it back (:func:`remove_stale`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from redraft.errors import InputError

Existing = Literal["error", "replace", "keep"]
"""What to do when the target exists at the moment of the rename: refuse (``error``), swap the new
one in (``replace``), or keep the one already there and drop ours (``keep``: another process
built the same cache first)."""


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prefix(target: Path, kind: str) -> str:
    # The writer's pid is in the name, so a later writer can tell a dead writer's leftovers from
    # a concurrent writer's work in progress.
    return f".{target.name}.{kind}-{os.getpid()}-"


@contextmanager
def atomic_dir(target: Path, *, existing: Existing = "error") -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; on success rename it to ``target``.

    On an exception the temporary directory is removed and ``target`` is untouched. With
    ``existing="replace"`` an old ``target`` is first moved aside (beside it) and deleted only after
    the new one is in place. Temporary directories that a killed writer of ``target`` left behind
    are removed first (:func:`remove_stale`).

    Args:
        target: the directory to create or replace.
        existing: see :data:`Existing`.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "index"
        >>> with atomic_dir(out) as tmp:
        ...     _ = (tmp / "header.json").write_text("{}")
        >>> sorted(p.name for p in out.iterdir())
        ['header.json']
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target, "building"), dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the result is a normal directory
    try:
        yield tmp
        _rename_dir(tmp, target, existing)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rename_dir(tmp: Path, target: Path, existing: Existing) -> None:
    if not target.exists():
        try:
            os.replace(tmp, target)
            return
        except OSError:
            if not target.exists():
                raise
            # Another process renamed its copy in between: fall through to the policy.
    if existing == "keep":
        return
    if existing == "error":
        raise InputError(f"{target} already exists; remove it or choose another output path")
    trash = Path(tempfile.mkdtemp(prefix=_prefix(target, "old"), dir=target.parent))
    os.replace(target, trash / target.name)
    os.replace(tmp, target)
    shutil.rmtree(trash, ignore_errors=True)


def remove_stale(target: Path) -> list[Path]:
    """Delete the temporary directories that killed writers of ``target`` left beside it; a
    directory whose writer still runs (a concurrent build) is left alone. An old ``target`` that a
    writer had moved aside, and was killed before renaming its replacement in, is put back first.
    Returns the directories removed."""
    removed = []
    for kind in ("building", "old"):
        head = f".{target.name}.{kind}-"
        for tmp in target.parent.glob(f"{head}*"):
            pid_text = tmp.name[len(head) :].split("-", 1)[0]
            # isascii: "²" is a digit to isdigit() but not to int(); such a name is not one of ours.
            if not (tmp.is_dir() and not tmp.is_symlink() and pid_text.isascii() and pid_text.isdigit()):
                continue
            if _alive(int(pid_text)):
                continue
            aside = tmp / target.name
            if kind == "old" and aside.is_dir() and not target.exists():
                os.replace(aside, target)
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def atomic_file(target: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Yield a temporary file beside ``target``, opened for writing; on success rename it to
    ``target`` (replacing an old one), on an exception delete it.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> with atomic_file(out) as f:
        ...     _ = f.write("{}\\n")
        >>> out.read_text()
        '{}\\n'
        >>> with atomic_file(pathlib.Path("/dev/null")) as f:
        ...     pass
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: /dev/null exists and is not a regular file...
    """
    # The rename would put a file where the device, pipe or directory was: as root, `-o /dev/null`
    # replaced the system's /dev/null with an export.
    if (target.exists() and not target.is_file()) or (target.is_symlink() and not target.resolve().is_file()):
        raise InputError(
            f"{target} exists and is not a regular file (a device, a directory...); redraft writes a new file and "
            "renames it into place, which would replace it. Give a file path."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the result is a normal file (a page to share)
    try:
        f: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if mode == "w" else os.fdopen(fd, "wb")
        with f:
            yield f
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
