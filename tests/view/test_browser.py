"""The view in a real browser: Debian's headless Chromium driven by Playwright (never a downloaded
browser). Each test saves a screenshot to ``test-artifacts/``."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redraft.store.sql import SQLStore
from redraft.view.render import render_static
from tests.view.conftest import CLAIM

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run does)"),
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Chromium's background services try the network at start; this machine has none. In a container
# /dev/shm may be 64 MB, too small for the renderer's frame buffers: Chromium's renderer crashed
# there ("Target crashed") while taking a screenshot, so shared memory goes through /tmp instead.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    ARTIFACTS.mkdir(exist_ok=True)
    # The viewport only: a full-page capture of a tall page is one large bitmap, the known way to
    # crash a headless renderer short of memory, and the artifact is for looking, not asserting.
    p.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()
    assert errors == [], errors  # no script on the page failed


@pytest.fixture(scope="module")
def static_file(experiment: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    url, exp = experiment
    path = tmp_path_factory.mktemp("static") / "trace.html"
    path.write_text(render_static(SQLStore(url, readonly=True), exp), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(experiment: tuple[str, str]) -> Iterator[str]:
    """``redraft serve``'s app under uvicorn on a free loopback port; yields its base URL once the
    server says it has started (an event, not a sleep)."""
    from redraft.view import create_app
    from redraft.view.serving import server as bounded

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = bounded(create_app(experiment[0], per_page=4), "127.0.0.1", port)  # as `redraft serve` runs it
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            pytest.fail("the server exited before it started")
        thread.join(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join()


def test_a_span_shows_its_source_document_when_clicked(page, static_file):
    page.goto(static_file.as_uri())
    mark = page.locator("mark.span", has_text=CLAIM).first
    assert mark.is_visible()
    panel = page.locator(f"#{mark.get_attribute('data-info')}")
    assert not panel.is_visible()
    mark.click()
    assert panel.is_visible()
    assert "truefalse_falseclaims.txt" in panel.inner_text() and CLAIM in panel.inner_text()


def test_the_diff_marks_the_changed_words(page, static_file):
    page.goto(static_file.as_uri())
    second = page.locator(".round[data-round='1'] .diff").first
    assert second.locator("ins").all_inner_texts() == ["I cannot help with that request."]
    [deleted] = second.locator("del").all_inner_texts()
    assert deleted.startswith("Sure, here you go.") and CLAIM in deleted


def test_the_charts_are_drawn_in_the_page(page, static_file):
    page.goto(static_file.as_uri())
    page.wait_for_selector(".chart svg")
    assert page.locator(".chart svg").count() == 2


def test_filters_change_the_table_in_the_static_file(page, static_file):
    page.goto(static_file.as_uri())
    rows = page.locator("#examples tr.row")
    assert rows.count() == 6 and all(rows.nth(i).is_visible() for i in range(6))
    page.select_option("select[name=change]", "improved")
    page.click("#filters button")
    visible = [rows.nth(i) for i in range(6) if rows.nth(i).is_visible()]
    assert len(visible) == 3 and all("advbench" in r.inner_text() for r in visible)
    assert page.locator("#count").inner_text() == "3 shown"


def test_filters_and_pages_on_the_server(page, server, experiment):
    exp = experiment[1]
    page.goto(f"{server}/r/{exp[:8]}")
    assert page.locator("#examples tr.row").count() == 4 and "page 1 of 2" in page.inner_text("nav.pages")
    page.select_option("select[name=critic]", "bci")
    page.select_option("select[name=verdict]", "wrong")
    page.click("#filters button")
    page.wait_for_url("**verdict=wrong**")
    rows = page.locator("#examples tr.row")
    assert rows.count() == 3 and all("benign" in rows.nth(i).inner_text() for i in range(3))
    rows.first.locator("a").click()
    page.wait_for_url("**/example/**")
    assert page.locator(".round").count() == 2


def test_a_script_in_a_draft_is_shown_as_text_and_never_runs(page, static_file, server, experiment):
    for where in (static_file.as_uri(), f"{server}/r/{experiment[1][:8]}"):
        page.goto(where)
        if where.startswith("http"):
            page.goto(f"{server}/example/{_injected_example(experiment)}")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("text=<script>window.__pwned = 1</script>").count() >= 1


def _injected_example(experiment: tuple[str, str]) -> int:
    store = SQLStore(experiment[0], readonly=True)
    for run in store.experiment(experiment[1]).runs:
        for e in store.examples(run.id):
            if any("__pwned" in r.draft for r in e.rounds):
                return e.id
    raise AssertionError("the experiment has no injected draft")
