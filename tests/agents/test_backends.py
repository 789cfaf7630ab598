"""One way to load a model: BackendSpec validation and the BACKENDS registry, from every entry point."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft.agents.backends import BACKENDS, BackendSpec, load_llm
from redraft.agents.openai_compat import OpenAICompatLLM
from redraft.errors import InputError
from redraft.experiments import ExperimentSpec
from tests.graphs.helpers import use_backend, use_llm

runner = CliRunner(env={"COLUMNS": "200"})
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def flat(text: str) -> str:
    return " ".join(text.split())


BAD = [
    ({"backend": "tgi"}, "backend: Input should be 'transformers', 'vllm' or 'openai'"),
    ({"backend": "openai", "model": "m"}, "base_url: backend 'openai' needs base_url"),
    ({"backend": "openai", "model": "m", "base_url": "127.0.0.1:8000"}, "base_url must be an http(s) URL"),
    ({"backend": "openai", "base_url": "http://127.0.0.1:1/v1"}, "model: backend 'openai' needs model"),
    ({"base_url": "http://127.0.0.1:1/v1"}, "base_url is only for backend 'openai'"),
    ({"backend": "openai", "model": "m", "base_url": "http://x/v1", "max_concurrency": 0}, "max_concurrency"),
    ({"max_model_len": 2048, "dtype": "float32"}, "dtype, max_model_len set the vLLM engine: they need backend 'vllm'"),
    ({"enforce_eager": True}, "enforce_eager set the vLLM engine: they need backend 'vllm'"),
    ({"model": "qwen2.5-1.5b"}, "no model is named 'qwen2.5-1.5b'; did you mean 'qwen2.5-coder-1.5b'?"),
    # A shared experiment file must not be able to send any variable to its server as a key.
    (
        {"backend": "openai", "model": "m", "base_url": "https://x/v1", "api_key_env": "AWS_SECRET_ACCESS_KEY"},
        "api_key_env 'AWS_SECRET_ACCESS_KEY' is not tied to 'x', so it is not sent there",
    ),
    (
        {"backend": "openai", "model": "m", "base_url": "https://evil.example/v1", "api_key_env": "STRIPE_API_KEY"},
        "export REDRAFT_API_KEY_ENVS=evil.example=STRIPE_API_KEY",
    ),
]
if not HAS_VLLM:
    BAD.append(({"backend": "vllm", "model": "m"}, 'pip install "redraft[vllm]"'))


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_a_bad_backend_choice_names_the_field_in_library_cli_and_experiment_files(tmp_path, fields, message):
    from pydantic import ValidationError

    from redraft.errors import invalid_fields

    with pytest.raises(ValidationError) as err:
        BackendSpec.model_validate(fields)
    assert message in str(invalid_fields("spec", err.value))
    # The experiment file carries the same fields at its top level.
    spec = {"name": "x", "datasets": [{"name": "benign"}], "critics": ["oracle"], **fields}
    with pytest.raises(InputError, match="invalid fields in") as err2:
        ExperimentSpec.parse(spec)
    assert message in str(err2.value)


def test_the_cli_validates_backend_options_before_anything_loads(tmp_path, monkeypatch):
    def no_model(spec):
        raise AssertionError("loaded")

    use_backend(monkeypatch, no_model)
    result = runner.invoke(cli.app, ["run", "--prompt", "q", "--backend", "openai", "--db", str(tmp_path / "x")])
    assert result.exit_code == 2 and "base_url: backend 'openai' needs base_url" in flat(result.output)
    result = runner.invoke(cli.app, ["demo", "--backend", "nope", "--db", str(tmp_path / "x")])
    assert result.exit_code == 2 and "backend: Input should be" in flat(result.output)


def test_openai_loads_through_the_registry_with_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "sk-test")
    monkeypatch.setenv("REDRAFT_API_KEY_ENVS", "127.0.0.1=MY_API_KEY")
    spec = BackendSpec(backend="openai", model="m", base_url="http://127.0.0.1:1/v1", api_key_env="MY_API_KEY")
    llm = load_llm(spec)
    assert isinstance(llm, OpenAICompatLLM) and llm.api_key == "sk-test" and llm.max_concurrency == 32
    assert "sk-test" not in spec.model_dump_json()


def test_keys_go_only_where_meant(monkeypatch):
    local = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    # A name the user ties to this host in their own environment is allowed, and only then.
    monkeypatch.setenv("HF_TOKEN", "hf-secret")
    with pytest.raises(ValueError, match=r"export REDRAFT_API_KEY_ENVS=127\.0\.0\.1=HF_TOKEN"):
        BackendSpec(**local, api_key_env="HF_TOKEN")
    monkeypatch.setenv("REDRAFT_API_KEY_ENVS", "127.0.0.1=HF_TOKEN, api.together.xyz=MINE_API_KEY")
    assert load_llm(BackendSpec(**local, api_key_env="HF_TOKEN")).api_key == "hf-secret"  # type: ignore[attr-defined]
    # Tied to one host, the key goes to no other: a file cannot point it at its own server.
    with pytest.raises(ValueError, match=r"'HF_TOKEN' is not tied to 'evil\.example'"):
        BackendSpec(**{**local, "base_url": "https://evil.example/v1"}, api_key_env="HF_TOKEN")
    # The old form (a bare name, valid for any host) is refused by name, not read as a pairing.
    monkeypatch.setenv("REDRAFT_API_KEY_ENVS", "HF_TOKEN")
    with pytest.raises(ValueError, match="not a host=VAR pair"):
        BackendSpec(**local, api_key_env="HF_TOKEN")
    # A variable named on purpose but unset is an error: OPENAI_API_KEY does not stand in for it.
    monkeypatch.setenv("REDRAFT_API_KEY_ENVS", "127.0.0.1=MINE_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(InputError, match="api_key_env names MINE_API_KEY, which is not set"):
        load_llm(BackendSpec(**local, api_key_env="MINE_API_KEY"))
    # A key never crosses the network in clear text unless the user says the network is trusted.
    remote = {**local, "base_url": "http://10.0.0.2:8000/v1"}
    with pytest.raises(InputError, match="refusing to send the API key in clear text to http://10"):
        load_llm(BackendSpec(**remote))
    monkeypatch.setenv("REDRAFT_ALLOW_PLAIN_HTTP_KEY", "1")
    assert load_llm(BackendSpec(**remote)).api_key == "sk-openai"  # type: ignore[attr-defined]
    # No key at all: nothing to protect, and no Authorization header is sent.
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("REDRAFT_ALLOW_PLAIN_HTTP_KEY")
    llm = load_llm(BackendSpec(**remote))
    assert "Authorization" not in llm._headers()  # type: ignore[attr-defined]


def test_every_entry_point_loads_through_the_one_registry(tmp_path, monkeypatch):
    """run, demo and experiment run all ask BACKENDS, with the spec the user wrote."""
    seen: list[BackendSpec] = []

    def record(spec):
        seen.append(spec)
        raise InputError("stop here")

    use_backend(monkeypatch, record)
    db = str(tmp_path / "x.db")
    runner.invoke(
        cli.app,
        [
            "run",
            "--prompt",
            "q",
            "--backend",
            "openai",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:1/v1",
            "--db",
            db,
        ],
    )
    runner.invoke(cli.app, ["demo", "--no-bci", "--db", db])
    (tmp_path / "e.yaml").write_text(
        "name: x\nbackend: openai\nmodel: served\nbase_url: http://127.0.0.1:1/v1\nmax_concurrency: 4\n"
        "datasets: [{name: benign, limit: 1}]\ncritics: [oracle]\n"
    )
    runner.invoke(cli.app, ["experiment", "run", str(tmp_path / "e.yaml"), "--db", db])
    assert [(s.backend, s.model) for s in seen] == [("openai", "m"), ("transformers", "embedded"), ("openai", "served")]
    assert seen[2].max_concurrency == 4
    assert set(BACKENDS) == {"transformers", "vllm", "openai"}


def test_the_cli_only_parses_and_prints():
    """The engine lives in its packages: prompt running and resume (redraft.graphs.runs), worker
    processes (LocalExecutor), model loading (BACKENDS); the CLI keeps no copy."""
    import inspect

    from redraft.experiments.executors import LocalExecutor
    from redraft.graphs import runs

    source = inspect.getsource(cli)
    for engine in ("subprocess", "sqlite_checkpointer", "Progress(", "TransformersLLM", "default_llm("):
        assert engine not in source, engine
    assert callable(runs.run_prompts) and LocalExecutor(workers=3).shard == (0, 3)


def test_whoever_loads_a_model_closes_it_even_when_the_run_fails(tmp_path, monkeypatch):
    """`redraft run --backend vllm` never exited: the engine's core process outlived the run.
    The CLI and the local executor close what they load, on success and on failure."""
    from redraft.agents.testing import FunctionLLM, ScriptedLLM
    from redraft.experiments.executors import LocalExecutor
    from redraft.store.sql import SQLStore
    from tests.experiments.worker import SPEC, reply

    closed: list[str] = []

    class Closing(ScriptedLLM):
        def close(self) -> None:
            closed.append("run")

    use_llm(monkeypatch, Closing(["Paris.", "VERDICT: CORRECT"]))  # the draft, the self-check
    done = runner.invoke(cli.app, ["run", "--prompt", "q", "--max-rounds", "1", "--db", str(tmp_path / "a.db")])
    assert done.exit_code == 0, done.output
    use_llm(monkeypatch, Closing([]))  # runs out of replies: the run fails
    failed = runner.invoke(cli.app, ["run", "--prompt", "q", "--db", str(tmp_path / "b.db")])
    assert failed.exit_code != 0 and closed == ["run", "run"]

    class ClosingF(FunctionLLM):
        def close(self) -> None:
            closed.append("experiment")

    spec = ExperimentSpec.parse(SPEC)
    store = SQLStore(f"sqlite:///{tmp_path / 'e.db'}")
    exp = store.start_experiment(spec.name, spec.stored())
    LocalExecutor(llm_factory=lambda s: ClosingF(reply)).run(spec, store, exp)
    handed = ClosingF(reply)  # a model handed in stays open: its owner closes it
    LocalExecutor(llm=handed).run(spec, store, exp)
    assert closed == ["run", "run", "experiment"]
