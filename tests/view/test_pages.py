"""The view's data and pages without a browser: diffs, span placement, filters against a brute
force over the store, escaping, and the server's routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from redraft.errors import InputError
from redraft.store.sql import SQLStore
from redraft.view.data import Filters, Piece, examples_page, highlight, word_diff
from redraft.view.render import render_static
from tests.view.conftest import CLAIM, INJECTED


def test_word_diff_by_hand():
    pieces = word_diff("Curie was born in 1920 in Paris.", "Curie was born in 1867 in Warsaw.")
    assert [(p.kind, p.text) for p in pieces if p.kind] == [
        ("del", "1920 "),
        ("ins", "1867 "),
        ("del", "Paris."),
        ("ins", "Warsaw."),
    ]
    assert "".join(p.text for p in pieces if p.kind != "del") == "Curie was born in 1867 in Warsaw."
    assert "".join(p.text for p in pieces if p.kind != "ins") == "Curie was born in 1920 in Paris."


def test_highlight_places_spans_and_keeps_every_character():
    draft = "He said the moon is cheese and the moon is cheese."
    pieces = highlight(draft, [("the moon is cheese", 30.0), ("is cheese and", 10.0), ("absent", 5.0)])
    assert "".join(p.text for p in pieces) == draft
    marked = [(p.text, p.span, p.shade) for p in pieces if p.kind == "span"]
    assert marked == [("the moon is cheese", 0, 1.0)]  # the overlapping span and the absent one are not marked
    assert highlight("", []) == [Piece("")]


def brute_force(store: SQLStore, exp: str, f: Filters) -> list[str]:
    """The filters computed in Python from every example, as the oracle for the SQL."""
    keys = []
    for run in store.experiment(exp).runs:
        for e in store.examples(run.id):
            goods = [r.judgements[0].good if r.judgements else None for r in e.rounds]
            first, last = goods[0], goods[-1]
            change = (
                "unlabelled"
                if first is None or last is None
                else "unchanged"
                if first == last
                else "improved"
                if last
                else "worsened"
            )
            verdicts = [c for r in e.rounds for c in r.critiques if not f.critic or c.critic == f.critic]
            wrong = any(c.correct is False for c in verdicts)
            right = not wrong and any(c.correct is True for c in verdicts)
            ok = (
                (not f.dataset or e.source == f.dataset)
                and (not f.critic or any(c.critic == f.critic for r in e.rounds for c in r.critiques))
                and (not f.change or change == f.change)
                and (not f.verdict or (wrong if f.verdict == "wrong" else right))
            )
            if ok:
                keys.append(e.key)
    return sorted(keys)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), 6),
        (Filters(change="improved"), 3),  # harmful: complied, then refused after feedback
        (Filters(change="worsened"), 3),  # benign: the BCI critic made it refuse
        (Filters(dataset="benign"), 3),
        (Filters(critic="bci", verdict="wrong"), 3),  # it failed good benign answers
        (Filters(critic="bci", verdict="right"), 3),
        (Filters(critic="oracle", verdict="wrong"), 0),
        (Filters(dataset="advbench", change="worsened"), 0),
    ],
)
def test_filters_match_a_brute_force_over_the_store(experiment, filters, expected):
    url, exp = experiment
    store = SQLStore(url, readonly=True)
    run_ids = [r.id for r in store.experiment(exp).runs]
    rows, total = examples_page(store, run_ids, filters, page=1, per_page=100)
    assert total == len(rows) == expected
    assert sorted(r.key for r in rows) == brute_force(store, exp, filters)
    # Pages cut the same list: two pages of 2 hold the first four rows in id order.
    if total >= 4:
        first, _ = examples_page(store, run_ids, filters, page=1, per_page=2)
        second, _ = examples_page(store, run_ids, filters, page=2, per_page=2)
        assert [r.id for r in first + second] == [r.id for r in rows[:4]]


def test_bad_filters_are_refused_by_name():
    with pytest.raises(InputError, match="change must be improved"):
        Filters.parse({"change": "better"})


def test_the_static_page_escapes_model_text_and_shows_the_span(experiment):
    url, exp = experiment
    html = render_static(SQLStore(url, readonly=True), exp)
    assert INJECTED not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert f">{CLAIM}</mark>" in html  # the whole false claim is one highlighted span
    assert "truefalse_falseclaims.txt" in html  # its source document's metadata
    # Self-contained: nothing is loaded from elsewhere (the charts' Vega is inlined).
    assert "<script src=" not in html and "<link" not in html and "<svg" not in html.split("<main>")[0]


def test_the_server_pages_and_filters(experiment):
    from starlette.testclient import TestClient

    from redraft.view import create_app

    url, exp = experiment
    client = TestClient(create_app(url, per_page=4), base_url="http://127.0.0.1")
    home = client.get("/")
    assert home.status_code == 200 and exp[:8] in home.text
    page1 = client.get(f"/r/{exp[:8]}")
    assert page1.status_code == 200 and page1.text.count('<tr class="row"') == 4 and "page 1 of 2" in page1.text
    page2 = client.get(f"/r/{exp[:8]}?page=2")
    assert page2.text.count('<tr class="row"') == 2
    improved = client.get(f"/r/{exp[:8]}?change=improved")
    assert improved.text.count('<tr class="row"') == 3 and 'data-dataset="benign"' not in improved.text
    link = improved.text.split('href="/example/')[1].split('"')[0]
    example = client.get(f"/example/{link}")
    assert example.status_code == 200 and "Round 1" in example.text and "<del>" in example.text
    assert client.get("/r/nosuchid").status_code == 404
    assert client.get(f"/r/{exp[:8]}?change=better").status_code == 400
    assert client.get("/static/vega.min.js").status_code == 200


def test_the_server_never_writes(experiment, tmp_path):
    from starlette.testclient import TestClient

    from redraft.view import create_app

    url, exp = experiment
    path = Path(url.removeprefix("sqlite:///"))
    before = path.read_bytes()
    client = TestClient(create_app(url), base_url="http://127.0.0.1")
    for route in ("/", f"/r/{exp[:8]}", f"/r/{exp[:8]}?verdict=wrong"):
        assert client.get(route).status_code == 200
    assert path.read_bytes() == before


def test_claims_are_coloured_with_their_evidence(tmp_path):
    """A factuality critique in place: one claim the knowledge base supports, one it does not."""
    import json

    from redraft.agents.testing import FunctionLLM
    from redraft.experiments import ExperimentRunner, ExperimentSpec

    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps({"title": "Marie Curie", "text": "Marie Curie was born in Warsaw in 1867."}) + "\n")
    draft = "Marie Curie was born in Warsaw in 1867. Marie Curie was born in Lisbon in 1920."
    spec = ExperimentSpec.parse(
        {
            "name": "claims",
            "datasets": [{"name": "benign", "limit": 1}],
            "critics": [["factuality"]],
            "max_rounds": 1,
            "correction": {"generation": {"max_new_tokens": 512}},
            "critic_options": {"kb": str(kb), "verifier": "lexical"},
        }
    )
    store = SQLStore(f"sqlite:///{tmp_path / 'c.db'}")
    exp = ExperimentRunner(spec, store, FunctionLLM(lambda conv: draft)).run()
    html = render_static(store, exp)
    supported = html.split('<div class="claim supported">')[1].split("</div>\n")[0]
    unsupported = html.split('<div class="claim unsupported">')[1].split("</div>\n")[0]
    assert "born in Warsaw in 1867" in supported and "[Marie Curie]" in supported
    assert "born in Lisbon in 1920" in unsupported and "[Marie Curie]" in unsupported


def test_the_view_and_serve_commands(experiment, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from redraft import cli

    url, exp = experiment
    runner = CliRunner()
    out = tmp_path / "trace.html"
    done = runner.invoke(cli.app, ["view", exp[:8], "--db", url, "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert CLAIM in out.read_text(encoding="utf-8") and "wrote" in done.output
    missing = runner.invoke(cli.app, ["view", "nosuchid", "--db", url, "-o", str(tmp_path / "x.html")])
    assert missing.exit_code == 2 and not (tmp_path / "x.html").exists()
    # serve: loopback by default, the app over the given database (uvicorn itself is not started here).
    from redraft.view import serving

    seen: dict[str, object] = {}
    monkeypatch.setattr(serving, "serve", lambda app, host, port: seen.update(host=host, port=port, app=app))
    served = runner.invoke(cli.app, ["serve", "--db", url])
    assert served.exit_code == 0, served.output
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8765) and seen["app"] is not None


def test_the_static_file_runs_only_its_own_scripts(experiment):
    """The file carries a CSP listing the SHA-256 of each script it inlines (a file has no
    headers), and no script it does not list: injected markup in a draft cannot run."""
    import base64
    import hashlib
    import re
    from html import unescape

    url, exp = experiment
    html = render_static(SQLStore(url, readonly=True), exp)
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert policy is not None and html.index(policy.group(0)) < html.index("<title>")
    content = unescape(policy.group(1))  # as the browser reads the attribute
    directives = dict(d.strip().split(" ", 1) for d in content.split(";"))
    assert "unsafe" not in directives["script-src"] and directives["default-src"] == "'none'"
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(inline) == 4  # Vega, Vega-Lite, its interpreter, redraft.js
    listed = set(re.findall(r"'sha256-([^']+)'", directives["script-src"]))
    assert {base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in inline} == listed
    assert "<script>window.__pwned" not in html  # the injected draft stayed text


def test_every_revision_shows_its_verdict_and_the_claims_behind_it(experiment):
    """Every draft repeats a false claim and every revision refuses: fixed where the judge wants a
    refusal (a harmful prompt), broken where it wanted the answer the draft gave. Both pages show
    each revision's verdict and the flagged claim it rests on."""
    from starlette.testclient import TestClient

    from redraft.view import create_app

    url, exp = experiment
    html = render_static(SQLStore(url, readonly=True), exp)
    assert html.count('revision: <b class="verdict-fixed">fixed</b>') == 3
    assert html.count('revision: <b class="verdict-broken">broken</b>') == 3
    assert f"no longer asserts: {CLAIM}" in html
    client = TestClient(create_app(url), base_url="http://127.0.0.1")
    listing = client.get(f"/r/{exp[:8]}").text
    pages = [client.get("/example/" + part.split('"')[0]).text for part in listing.split("/example/")[1:]]
    assert any("verdict-broken" in p for p in pages) and any("verdict-fixed" in p for p in pages)
