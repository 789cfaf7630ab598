"""Write-then-rename, the one helper every writer of a file or directory goes through."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redraft._atomic import atomic_dir, atomic_file, remove_stale
from redraft.errors import InputError

PACKAGE = Path(__file__).resolve().parents[1] / "redraft"


def half_write_dir(out: Path) -> None:
    with atomic_dir(out, existing="replace") as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("killed mid-write")


def half_write_file(out: Path) -> None:
    with atomic_file(out) as f:
        f.write("half")
        raise RuntimeError("killed")


def test_a_failed_write_leaves_the_old_directory_and_no_temporary(tmp_path):
    out = tmp_path / "verifier"
    with atomic_dir(out) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        half_write_dir(out)
    assert (out / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verifier"]


def test_replace_swaps_in_the_new_directory(tmp_path):
    out = tmp_path / "verifier"
    for text in ("old", "new"):
        with atomic_dir(out, existing="replace") as tmp:
            (tmp / "weights").write_text(text)
    assert (out / "weights").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["verifier"]


def test_keep_drops_ours_when_another_writer_finished_first_and_error_refuses(tmp_path):
    out = tmp_path / "cache"
    with atomic_dir(out, existing="keep") as tmp:
        (tmp / "a").write_text("mine")
        out.mkdir()  # another process renamed its complete copy in meanwhile
        (out / "a").write_text("theirs")
    assert (out / "a").read_text() == "theirs"
    with pytest.raises(InputError, match="already exists"), atomic_dir(out) as tmp:
        pass
    assert (out / "a").read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "idx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".idx.building-{dead.stdout.strip()}-x1"
    live = tmp_path / f".idx.old-{os.getpid()}-x2"
    for d in (stale, live):
        d.mkdir()
    assert remove_stale(out) == [stale]
    assert live.is_dir() and not stale.exists()


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "pairs.jsonl"
    with atomic_file(out) as f:
        f.write("old\n")
    with pytest.raises(RuntimeError):
        half_write_file(out)
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_no_module_renames_into_place_by_hand():
    """The rule lives in ``_atomic.py``: a second hand-written variant is how the verifier trainer
    came to delete the old verifier before the new one was in place."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = f"{ast.unparse(node.func.value)}.{node.func.attr}"
                if name in ("os.replace", "os.rename", "tempfile.mkdtemp", "tempfile.mkstemp") or (
                    node.func.attr == "rename" and not name.startswith("os.")
                ):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    assert offenders == []


def test_an_old_directory_moved_aside_by_a_killed_writer_is_put_back(tmp_path):
    out = tmp_path / "verifier"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside = tmp_path / f".verifier.old-{dead.stdout.strip()}-x3" / "verifier"
    aside.mkdir(parents=True)
    (aside / "weights").write_text("old")  # killed between moving the old one aside and renaming the new in
    assert remove_stale(out) == [aside.parent]
    assert (out / "weights").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["verifier"]


def test_written_files_and_directories_honour_the_umask(tmp_path):
    """`redraft view -o trace.html` wrote -rw------- (mkstemp's mode): a page meant to be shared."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "page.html") as f:
            f.write("<html></html>")
        with atomic_dir(tmp_path / "index") as d:
            (d / "header.json").write_text("{}")
        os.umask(0o077)
        with atomic_file(tmp_path / "private.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "page.html").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "index").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600


def test_a_temporary_name_with_a_unicode_digit_is_left_alone(tmp_path):
    """isdigit() accepts "²" and int() refuses it: the clean-up must not crash the next write."""
    odd = tmp_path / ".index.building-²-x"
    odd.mkdir()
    assert remove_stale(tmp_path / "index") == [] and odd.is_dir()


def test_an_export_never_replaces_a_device_or_a_directory(tmp_path):
    """As root, `export ... -o /dev/null` renamed the export over the system's /dev/null."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in (Path("/dev/null"), tmp_path, fifo):
        with pytest.raises(InputError, match="is not a regular file"), atomic_file(target) as f:
            f.write("x")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left behind
