"""Catalogue: databases that are fresh, shared, missing, read-only, unreachable, too new, or
holding secrets."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from redraft import cli
from redraft.agents.testing import FunctionLLM
from redraft.errors import NotFoundError, StoreUnavailableError
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.base import RunInfo
from redraft.store.sql import SQLStore, redact
from tests.graphs.helpers import use_backend, use_llm

runner = CliRunner(env={"COLUMNS": "200"})
SECRET = "s3cret-pw"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open(url: str, barrier) -> None:
    barrier.wait()  # every process opens the fresh database at the same moment
    SQLStore(url).close()


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_first_use_of_a_fresh_database_migrates_once(store_url, attempt):
    """Four processes opening a fresh database at once used to crash 4-5 of 12 times
    (duplicate key ... alembic_version)."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open, args=(store_url, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_a_schema_newer_than_the_code_is_refused(store_url):
    SQLStore(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    for readonly in (False, True):
        with pytest.raises(StoreUnavailableError, match="'0099_from_the_future', newer than this redraft knows"):
            SQLStore(store_url, readonly=readonly)


def test_postgres_unreachable_on_a_closed_loopback_port_names_the_fix_and_hides_the_password():
    url = f"postgresql+psycopg://ann:{SECRET}@127.0.0.1:{closed_port()}/redraft"
    with pytest.raises(StoreUnavailableError, match="check that the server is running") as err:
        SQLStore(url)
    assert SECRET not in str(err.value) and "ann:***@127.0.0.1" in str(err.value)


@pytest.mark.parametrize("url", [f"nosuchdb://ann:{SECRET}@127.0.0.1/x", f"postgresql+nodriver://ann:{SECRET}@h/x"])
def test_url_errors_never_show_the_password(url):
    with pytest.raises((StoreUnavailableError, ImportError)) as err:
        SQLStore(url)
    assert SECRET not in str(err.value)


def test_redact_masks_passwords_even_in_unparseable_urls():
    assert redact(f"postgresql://ann:{SECRET}@db/x") == "postgresql://ann:***@db/x"
    assert SECRET not in redact(f"weird scheme://ann:{SECRET}@db/x")
    assert redact("redraft.db") == "redraft.db"


@pytest.mark.postgres
def test_the_experiments_table_never_stores_the_password(store_url):
    url = make_url(store_url).set(password=SECRET).render_as_string(hide_password=False)  # trust auth ignores it
    spec = ExperimentSpec.model_validate(
        {"name": "s", "database": url, "datasets": [{"name": "benign", "limit": 1}], "critics": ["oracle"]}
    )
    store = SQLStore(url)
    experiment_id = ExperimentRunner(spec, store, FunctionLLM(lambda conv: "Paris.")).run()
    stored = store.experiment(experiment_id).spec
    assert SECRET not in str(stored) and stored["database"] == make_url(url).render_as_string(hide_password=True)


def test_workers_get_the_database_url_from_the_environment_not_the_command_line(monkeypatch, tmp_path):
    spawned: list[tuple[list[str], dict[str, str]]] = []

    class Recorder:
        def __init__(self, args, env):
            spawned.append((args, env))

        def wait(self):
            return 0

    from redraft.experiments.executors import local

    monkeypatch.setattr(local.subprocess, "Popen", Recorder)
    use_llm(monkeypatch, FunctionLLM(lambda conv: "ok"))
    db = f"sqlite:///{tmp_path / 'w.db'}"
    spec = tmp_path / "w.yaml"
    spec.write_text("name: w\ndatasets: [{name: benign, limit: 2}]\ncritics: [oracle]\nmax_rounds: 1\n")
    result = runner.invoke(cli.app, ["experiment", "run", str(spec), "--workers", "3", "--db", db, "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(spawned) == 2
    for args, env in spawned:
        assert db not in " ".join(args) and "--db" not in args
        assert env["REDRAFT_DB"] == db


# -- reading commands never create or change a database --------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["show"],
        ["show", "abc"],
        ["report", "abc", "-o", "rep"],
        ["export", "dpo", "abc", "-o", "p.jsonl"],
        ["export", "sft", "abc", "-o", "s.jsonl"],
    ],
)
def test_reading_a_missing_database_is_an_error_and_creates_nothing(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, [*args, "--db", "typo.db"])
    assert result.exit_code == 2, result.output
    assert "there is no database at typo.db" in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_reading_commands_open_read_only(tmp_path):
    db = tmp_path / "r.db"
    store = SQLStore(f"sqlite:///{db}")
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    store.close()
    before = db.read_bytes()
    reader = SQLStore(f"sqlite:///{db}", readonly=True)
    assert [r.id for r in reader.runs()] == [run_id]
    with pytest.raises(Exception, match=r"readonly|read-only"):
        reader.start_run(RunInfo(model_id="m", config={}, critics=[]))
    assert db.read_bytes() == before


def test_a_read_only_database_fails_before_the_model_loads(tmp_path, monkeypatch):
    db = tmp_path / "ro.db"
    SQLStore(f"sqlite:///{db}").close()

    def no_model(spec):
        raise AssertionError("the model must not load for a database that cannot be written")

    use_backend(monkeypatch, no_model)
    url = f"sqlite:///file:{db}?mode=ro&uri=true"  # read-only however the user is privileged
    result = runner.invoke(cli.app, ["run", "--prompt", "hi", "--db", url])
    assert result.exit_code == 2, result.output
    assert "cannot be written" in " ".join(result.output.split())


def test_a_missing_directory_for_a_new_database_is_named(tmp_path):
    with pytest.raises(StoreUnavailableError, match="check that the directory exists"):
        SQLStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")


def test_run_id_prefixes_are_not_sql_wildcards(store_url):
    store = SQLStore(store_url)
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    assert store.run(run_id[:6]).id == run_id
    for prefix in ("%", "_", f"{run_id[:3]}%", "_" * 4):
        with pytest.raises(NotFoundError, match="matches no run"):
            store.run(prefix)
    with pytest.raises(NotFoundError, match="matches no experiment"):
        store.experiment("%")


def test_every_command_defaults_to_the_same_database():
    import inspect

    defaults = {}
    for command in cli.app.registered_commands + [
        c for group in cli.app.registered_groups for c in group.typer_instance.registered_commands
    ]:
        for name, param in inspect.signature(command.callback).parameters.items():
            if name == "db" and param.default not in (None, inspect.Parameter.empty):
                defaults[command.callback.__name__] = param.default
    assert len(defaults) >= 6 and set(defaults.values()) == {"redraft.db"}, defaults
    assert ExperimentSpec.model_fields["database"].default == "sqlite:///redraft.db"


def test_sqlite_path_is_not_created_by_show_when_the_directory_is_missing(tmp_path):
    result = runner.invoke(cli.app, ["show", "--db", str(tmp_path / "nodir" / "x.db")])
    assert result.exit_code == 2 and not Path(tmp_path / "nodir").exists()


def test_an_ambiguous_prefix_is_named_as_ambiguous_not_missing(tmp_path):
    """`redraft report ''` (or a one-character prefix) matching several experiments used to say
    "matches no run"."""
    from redraft.errors import AmbiguousIdError

    store = SQLStore(f"sqlite:///{tmp_path / 'a.db'}")
    ids = [store.start_experiment(f"e{i}", {}) for i in range(2)]
    with pytest.raises(AmbiguousIdError, match="matches 2 experiments; give more of it"):
        store.resolve("")
    assert store.resolve(ids[0][:12])[1] == []  # a unique prefix still resolves


READ_IN_A_READ_ONLY_PLACE = """
import json, sys
from redraft.errors import StoreUnavailableError
from redraft.store.sql import SQLStore
try:
    with SQLStore("sqlite:///" + sys.argv[1], readonly=True) as store:
        print(json.dumps({"runs": [r.id for r in store.runs()]}))
except StoreUnavailableError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def _read_unprivileged(db: Path) -> dict:
    """Read ``db`` with :class:`SQLStore` as a user who cannot write its directory: this user when
    it is not root (the directory made read-only), else ``nobody`` (root writes anywhere)."""
    import os
    import subprocess
    import sys

    if os.geteuid() != 0:
        command = [sys.executable, "-c", READ_IN_A_READ_ONLY_PLACE, str(db)]
    else:
        system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        if shutil.which("runuser") is None or not system.exists():
            pytest.skip("needs runuser and a system Python of this version to read as an unprivileged user")
        paths = [p for p in sys.path if p.endswith("site-packages")] + [str(Path(__file__).parents[2])]
        command = ["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={os.pathsep.join(paths)}", str(system)]
        # A checkout or venv under a private directory (a clone in mktemp -d) is out of nobody's reach.
        probe = subprocess.run(
            [*command, "-c", "import redraft.store.sql"], capture_output=True, text=True, timeout=120
        )
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot import this checkout: {probe.stderr.strip()[-200:]}")
        command += ["-c", READ_IN_A_READ_ONLY_PLACE, str(db)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or not out.stdout.strip():
        raise AssertionError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def shared_dir():
    """A directory others can read (not under pytest's private tmp), made read-only by the test."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="redraft-ro-"))
    path.chmod(0o755)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


def test_a_wal_database_in_a_read_only_place_is_read_or_refused_by_name(shared_dir):
    """A clean WAL database in a read-only directory is read (SQLite's immutable mode: nothing
    else holds its data); one whose -wal holds writes is refused by name, not read stale."""
    import sqlite3

    db = shared_dir / "shared.db"
    store = SQLStore(f"sqlite:///{db}")  # WAL mode, as every redraft database
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    store.close()
    assert not (shared_dir / "shared.db-wal").exists()
    shared_dir.chmod(0o555)
    db.chmod(0o444)
    assert _read_unprivileged(db) == {"runs": [run_id]}

    # A writer that stopped with its log not folded in: the -wal holds the only copy of a run.
    shared_dir.chmod(0o755)
    db.chmod(0o644)
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE runs SET name = 'only in the log'")
    writer.commit()
    copy = shared_dir / "copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{db}{suffix}", copy / f"shared.db{suffix}")
    writer.close()
    copy.chmod(0o555)
    answer = _read_unprivileged(copy / "shared.db")
    copy.chmod(0o755)
    assert "its write-ahead log shared.db-wal holds writes" in answer["error"]


def test_the_read_only_fallback_reads_a_clean_file_and_refuses_unfolded_writes(tmp_path):
    """What a reader falls back to when SQLite cannot open a WAL database in place (a read-only
    directory, which root never meets): the file alone when no -wal holds writes, else a named
    refusal. Runs for any user; the test above drives the same path as ``nobody``."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from redraft.store.engine import _immutable_sqlite

    db = tmp_path / "r.db"
    store = SQLStore(f"sqlite:///{db}")
    run_id = store.start_run(RunInfo(model_id="m", config={}, critics=[]))
    store.close()
    url = make_url(f"sqlite:///file:{db}?mode=ro&uri=true")
    cause = OperationalError("open", {}, Exception("attempt to write a readonly database"))
    engine = _immutable_sqlite(url, db, cause)
    with engine.connect() as c:
        assert [r[0] for r in c.execute(text("SELECT id FROM runs"))] == [run_id]
    engine.dispose()
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE runs SET name = 'only in the log'")
    writer.commit()
    try:
        with pytest.raises(StoreUnavailableError, match=r"its write-ahead log r\.db-wal holds writes"):
            _immutable_sqlite(url, db, cause)
    finally:
        writer.close()
