"""``redraft serve`` under a slowloris client: request heads have a deadline and connections a
cap, so held-open connections neither starve other clients nor exhaust file descriptors.

Before, 200 connections that never finished their headers were held for a minute, and at
``ulimit -n 128`` starved every other request while the accept loop spun on ``EMFILE``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytest.importorskip("uvicorn")

HEAD_START = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # never finished: no blank line follows


@pytest.fixture
def served(experiment):
    """A live server (header deadline 1 s, at most 20 connections) on a free loopback port."""
    from redraft.view import create_app
    from redraft.view.serving import server

    url, _ = experiment
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = server(create_app(url), "127.0.0.1", port, header_timeout_s=1.0, limit=20)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:  # an event: uvicorn sets it once the socket listens
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start")
        time.sleep(0.01)
    yield port
    srv.should_exit = True
    thread.join(10)


def slow_clients(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(HEAD_START)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket, within_s: float) -> bool:
    s.settimeout(within_s)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:  # aborted: reset rather than closed
        return True
    except TimeoutError:
        return False


def test_an_unfinished_request_head_is_cut_at_the_deadline(served):
    [s] = slow_clients(served, 1)
    start = time.monotonic()
    assert closed_by_server(s, within_s=1.0 + 5.0)
    assert time.monotonic() - start < 1.0 + 5.0
    s.close()


def test_slow_clients_do_not_starve_others(served):
    socks = slow_clients(served, 60)  # three times the cap
    try:
        # The ones over the cap are closed as they arrive; the rest at the header deadline.
        assert all(closed_by_server(s, within_s=1.0 + 5.0) for s in socks)
        answer = httpx.get(f"http://127.0.0.1:{served}/", timeout=10)
        assert answer.status_code == 200 and "redraft" in answer.text
    finally:
        for s in socks:
            s.close()


def test_a_finished_request_is_answered_and_the_next_head_gets_its_own_deadline(served):
    with socket.create_connection(("127.0.0.1", served)) as s:
        s.sendall(HEAD_START + b"\r\n")
        s.settimeout(10)
        first = b""
        while b"</html>" not in first:
            chunk = s.recv(65536)
            assert chunk, first[-200:]
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        s.sendall(HEAD_START)  # keep-alive: a second head, never finished
        assert closed_by_server(s, within_s=1.0 + 5.0)


def test_the_connection_cap_follows_the_descriptor_limit():
    code = (
        "import resource; soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard)); "
        "from redraft.view.serving import max_connections; print(max_connections())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "64"


def test_ipv6_loopback_host_headers_are_accepted_and_referers_stay_on_site(experiment):
    from starlette.testclient import TestClient

    from redraft.view import create_app

    url, _ = experiment
    c = TestClient(create_app(url), base_url="http://[::1]:8765")
    assert c.get("/").status_code == 200
    assert c.get("/", headers={"Host": "[::2]:8765"}).status_code == 400
    page = c.get("/").text
    example = page[page.index("/r/") :].split('"')[0]
    listing = c.get(example).text
    example_url = "/example/" + listing.split("/example/")[1].split('"')[0]
    evil = c.get(example_url, headers={"Referer": "https://evil.example/phish"}).text
    assert "evil.example" not in evil
    own = c.get(example_url, headers={"Referer": f"http://[::1]:8765{example}?page=1"}).text
    assert f'href="{example}?page=1"' in own


def test_serve_on_ipv6_loopback_prints_a_url_that_works(experiment, monkeypatch):
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.view import serving

    seen: dict[str, object] = {}
    monkeypatch.setattr(serving, "serve", lambda app, host, port: seen.update(host=host, app=app))
    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, ["serve", "--db", experiment[0], "--host", "::1"])
    assert result.exit_code == 0 and "http://[::1]:8765/" in result.output and seen["host"] == "::1"
