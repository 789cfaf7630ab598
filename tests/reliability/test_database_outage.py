"""Catalogue: PostgreSQL goes away mid-run and comes back; the run stops cleanly and --resume
finishes it with no round lost and none written twice.

The outage is real from the client's side: redraft talks to PostgreSQL through a loopback TCP
proxy that the test closes (existing connections cut, the port refusing new ones) and reopens
on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from redraft import cli
from redraft.agents.testing import FunctionLLM
from redraft.store import SQLStore
from tests.conftest import _postgres_db
from tests.graphs.helpers import use_llm

pytestmark = pytest.mark.postgres
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def store_url():
    """A fresh PostgreSQL database (skipped without REDRAFT_TEST_POSTGRES_URL)."""
    yield from _postgres_db()


class Proxy:
    """A loopback TCP proxy that can be cut and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.start()

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.port = self.listener.getsockname()[1]
        self.listener.listen()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would leave it accepting.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


def _rounds(url: str, run_id: str) -> dict[str, list[str]]:
    store = SQLStore(url)
    try:
        return {e.key: [r.draft for r in e.rounds] for e in store.examples(run_id)}
    finally:
        store.close()


def test_postgres_stopped_mid_run_then_resumed(store_url, monkeypatch):
    direct = make_url(store_url)
    proxy = Proxy(direct.host or "127.0.0.1", direct.port or 5432)
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    prompts = ["Capital of France?", "Capital of Italy?", "Capital of Spain?"]
    answers = {"France": "Paris.", "Italy": "Rome.", "Spain": "Madrid."}
    generated: list[str] = []

    def answer(conv):
        question = conv[-1]["content"]
        if "VERDICT" in question:  # the self-critic's check: accept
            return "VERDICT: CORRECT"
        generated.append(question)
        if "Italy" in question and len(generated) == 2:
            proxy.stop()  # the database goes away while the second prompt is being answered
        return next(a for k, a in answers.items() if k in question)

    use_llm(monkeypatch, FunctionLLM(answer))
    args = ["run", *(x for p in prompts for x in ("--prompt", p)), "--critic", "self", "--quiet", "--batch-size", "1"]
    try:
        first = runner.invoke(cli.app, [*args, "--db", via_proxy])
        assert first.exit_code == 2, first.output
        text = " ".join(first.output.split())
        assert "lost the database" in text and "--resume" in text
        [run] = SQLStore(store_url).runs()
        assert _rounds(store_url, run.id) == {"prompt-0": ["Paris."]}  # written before the outage, kept

        proxy.start()  # the database is back on the same address
        resumed = runner.invoke(cli.app, [*args, "--db", via_proxy, "--resume", run.id[:8]])
        assert resumed.exit_code == 0, resumed.output
        assert _rounds(store_url, run.id) == {"prompt-0": ["Paris."], "prompt-1": ["Rome."], "prompt-2": ["Madrid."]}
        assert "France" not in " ".join(generated[2:])  # the finished example was not redone
    finally:
        proxy.stop()
