"""The Ray executor on a real local Ray cluster (``ray start --head`` on loopback): the same rows
as the local executor, an actor killed mid-run, and a driver killed then resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts a Ray cluster or worker processes

ray = pytest.importorskip("ray")

from redraft.experiments import ExperimentSpec  # noqa: E402
from redraft.experiments.executors import RayExecutor  # noqa: E402
from redraft.store.sql import SQLStore  # noqa: E402
from tests.experiments.test_runner import outcomes, reference, snapshot  # noqa: E402
from tests.experiments.worker import SPEC, make_llm, make_slow_llm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"runtime_env": {"env_vars": {"PYTHONPATH": str(ROOT)}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node on loopback, as `ray start --head` on a real cluster; drivers connect to it."""
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent))
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    start = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    subprocess.run(
        [*start, "--include-dashboard=false", "--disable-usage-stats"], check=True, env=env, capture_output=True
    )
    address = f"127.0.0.1:{port}"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield address
    if ray.is_initialized():
        ray.shutdown()
    subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)


def executor(address: str, factory=make_llm) -> RayExecutor:
    return RayExecutor(2, address=address, llm_factory=factory, ray_init=RUNTIME)


def new_experiment(store: SQLStore) -> str:
    spec = ExperimentSpec.parse(SPEC)
    return store.start_experiment(spec.name, spec.model_dump(mode="json"))


def test_two_actors_write_the_rows_of_the_local_executor(cluster, store_url, tmp_path):
    ref_store, ref = reference(tmp_path)
    store = SQLStore(store_url)
    exp = new_experiment(store)
    executor(cluster).run(ExperimentSpec.parse(SPEC), store, exp)
    assert snapshot(store, exp) == snapshot(ref_store, ref)
    assert outcomes(store, exp) == outcomes(ref_store, ref)


def test_an_actor_killed_mid_run_is_restarted_and_no_round_is_lost_or_repeated(cluster, tmp_path):
    ref_store, ref = reference(tmp_path)
    store = SQLStore(f"sqlite:///{tmp_path / 'ray.db'}")
    exp = new_experiment(store)
    ex = executor(cluster, make_slow_llm)
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            ex.run(ExperimentSpec.parse(SPEC), store, exp)
        except BaseException as e:  # surfaced below
            errors.append(e)

    thread = threading.Thread(target=drive)
    thread.start()
    # Wait for the event, not a clock: actors start slowly on a loaded machine, and a kill before
    # the first written round proves nothing. pytest-timeout bounds a run that never gets there.
    while thread.is_alive():
        runs = [r.id for r in store.experiment(exp).runs]
        if ex.actors and store.progress(runs)[1] >= 10:
            break
        time.sleep(0.05)
    killed_at = store.progress([r.id for r in store.experiment(exp).runs])[1]
    ray.kill(ex.actors[0], no_restart=False)  # the actor dies; Ray restarts it and retries its shard
    thread.join(timeout=300)
    assert not thread.is_alive() and errors == []
    total = len(snapshot(ref_store, ref))
    assert 0 < killed_at < total, f"the kill did not land mid-run ({killed_at} of {total} rounds)"
    assert snapshot(store, exp) == snapshot(ref_store, ref)


def test_driver_killed_then_resumed(cluster, tmp_path):
    ref_store, ref = reference(tmp_path)
    url = f"sqlite:///{tmp_path / 'driver.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    cmd = [sys.executable, "-m", "tests.experiments.worker", url]
    driver = subprocess.Popen([*cmd, "-", "0/1", "0", cluster], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert driver.stdout is not None
    exp = driver.stdout.readline().strip()
    store = SQLStore(url)
    while driver.poll() is None:  # the event (rounds written), not a clock
        if store.progress([r.id for r in store.experiment(exp).runs])[1] >= 10:
            break
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)  # the job ends: Ray kills its actors
    driver.wait()
    driver.stdout.close()
    killed_at = store.progress([r.id for r in store.experiment(exp).runs])[1]
    resumed = subprocess.run([*cmd, exp, "0/1", "0", cluster], env=env, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0
    total = len(snapshot(ref_store, ref))
    assert 0 < killed_at < total
    assert snapshot(store, exp) == snapshot(ref_store, ref)


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "redraft\[ray\]"'):
        RayExecutor(2)


def test_the_local_default_never_imports_ray():
    code = (
        "import sys, redraft.cli, redraft.experiments, redraft.experiments.executors; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_an_openai_experiment_on_ray_actors_matches_the_local_run(cluster, tmp_path, monkeypatch):
    """The real OpenAI-compatible client in each actor (no factory), against a loopback stub; the
    API key reaches the actors from the driver's environment, not from the spec."""
    from redraft.agents.backends import load_llm
    from redraft.experiments import ExperimentRunner
    from tests.agents.openai_stub import StubServer
    from tests.experiments.test_openai_experiment import labels, reply

    monkeypatch.setenv("REDRAFT_TEST_RAY_API_KEY", "sk-ray-only")
    monkeypatch.setenv("REDRAFT_API_KEY_ENVS", "127.0.0.1=REDRAFT_TEST_RAY_API_KEY")
    stub = StubServer(reply, labels)
    try:
        spec = ExperimentSpec.parse(
            {
                "name": "ray-openai",
                "backend": "openai",
                "model": "stub-model",
                "base_url": stub.url,
                "api_key_env": "REDRAFT_TEST_RAY_API_KEY",
                "datasets": [{"name": "advbench", "limit": 3, "seed": 1}, {"name": "benign", "limit": 3, "seed": 1}],
                "critics": [["self-harm"], ["oracle"]],
                "max_rounds": 2,
            }
        )
        local = SQLStore(f"sqlite:///{tmp_path / 'local.db'}")
        local_exp = ExperimentRunner(spec, local, load_llm(spec)).run()
        store = SQLStore(f"sqlite:///{tmp_path / 'ray.db'}")
        exp = store.start_experiment(spec.name, spec.stored())
        RayExecutor(2, address=cluster, ray_init=RUNTIME).run(spec, store, exp)
    finally:
        stub.stop()
    assert snapshot(store, exp) == snapshot(local, local_exp)
    assert stub.authorizations == {"Bearer sk-ray-only"}
    assert "sk-ray-only" not in json.dumps(store.experiment(exp).spec)


def test_the_database_url_is_no_actor_argument(tmp_path):
    """Ray's dashboard shows actor arguments: the URL (and its password) travels in the actors'
    environment instead. The executor's actor calls are recorded without starting Ray."""
    calls: list[tuple] = []

    class FakeActorClass:  # records what would be sent to Ray, then stops the run
        def options(self, **kwargs):
            calls.append(("options", kwargs))
            return self

        def remote(self, *args):
            calls.append(("remote", args))
            raise RuntimeError("recorded")

    class FakeRay:
        def is_initialized(self):
            return True

        def remote(self, **kwargs):
            return lambda cls: FakeActorClass()

    url = f"sqlite:///{tmp_path / 'secret-pw.db'}"
    executor = RayExecutor(1)
    executor.ray = FakeRay()
    with pytest.raises(RuntimeError, match="recorded"):
        executor.run(ExperimentSpec.parse(SPEC), SQLStore(url), "exp")
    [(_, options), (_, args)] = calls
    assert options["runtime_env"]["env_vars"]["REDRAFT_DB"] == url
    assert "secret-pw" not in repr(args)
