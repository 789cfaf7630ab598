"""Hash manifests: a directory of files, each checked against the sha256 its ``MANIFEST.json`` records.

A shipped or shared model directory is a file a user was handed (or a wheel that may have been
damaged on the way). Its manifest lists every file with its size and sha256, plus free-form
provenance (the command that made it, the data versions). :func:`check_manifest` refuses a
missing, truncated or changed file by name, before anything reads it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from redraft.errors import InputError

MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = f.write_bytes(b"abc")
        >>> sha256_file(f)[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """``MANIFEST.json``: the files of a directory and where they came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    files: dict[str, FileEntry]
    provenance: dict[str, Any] = {}
    """How the files were made: command, code and data versions, measured results."""

    @field_validator("files")
    @classmethod
    def _plain_names(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        # A manifest names files inside its own directory, never a path out of it.
        for name in files:
            if not name or "/" in name or "\\" in name or name in {".", ".."} or name == MANIFEST:
                raise ValueError(f"file name {name!r} is not a plain file name in the directory")
        return files


def write_manifest(directory: Path, name: str, provenance: dict[str, Any] | None = None) -> Manifest:
    """Hash every file in ``directory`` (not its subdirectories) into its ``MANIFEST.json``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "weights.bin").write_bytes(b"abc")
        >>> write_manifest(d, "demo").files["weights.bin"].bytes
        3
        >>> check_manifest(d).name
        'demo'
    """
    files = {
        f.name: FileEntry(bytes=f.stat().st_size, sha256=sha256_file(f))
        for f in sorted(directory.iterdir())
        if f.is_file() and f.name != MANIFEST
    }
    manifest = Manifest(name=name, files=files, provenance=provenance or {})
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest


def check_manifest(directory: Path, *, fix: str = "") -> Manifest:
    """Read ``directory``'s manifest and check every file it lists; raise :class:`InputError`
    naming the first file that is missing, of the wrong size or of the wrong hash, or present but
    not listed (a loader reads whatever tokenizer or config files it finds, so an extra file
    changes what loads as surely as a changed one), and ``fix``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "weights.bin").write_bytes(b"abc")
        >>> _ = write_manifest(d, "demo")
        >>> _ = (d / "weights.bin").write_bytes(b"ab")
        >>> check_manifest(d, fix="Reinstall it.")
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: .../weights.bin is 2 bytes, but its manifest says 3: ... Reinstall it.
    """
    path = directory / MANIFEST
    tail = f" {fix}" if fix else ""
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{directory} has no {MANIFEST}, so its files cannot be checked.{tail}") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise InputError(f"{path} is not a valid manifest ({where}: {problem['msg']}).{tail}") from None
    extra = sorted(p.name for p in directory.iterdir() if p.name != MANIFEST and p.name not in manifest.files)
    if extra:
        raise InputError(f"{directory} holds {', '.join(extra[:5])}, which {MANIFEST} does not list.{tail}")
    for name, entry in manifest.files.items():
        file = directory / name
        if not file.is_file():
            raise InputError(f"{file} is missing, though {MANIFEST} lists it.{tail}")
        size = file.stat().st_size
        if size != entry.bytes:
            raise InputError(
                f"{file} is {size} bytes, but its manifest says {entry.bytes}: "
                f"the file is truncated or was changed.{tail}"
            )
        if sha256_file(file) != entry.sha256:
            raise InputError(f"{file} does not match the sha256 in its manifest: the file was changed.{tail}")
    return manifest
