"""`redraft index build | stats | query | calibrate` end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from redraft import cli

runner = CliRunner(env={"COLUMNS": "200"})
DOCS = [
    {"text": "Vermilion herons nest only on the basalt cliffs of Ostrava Bay.", "title": "herons"},
    {"text": "Copper kettles sing when the tide turns at Lindqvist harbour.", "title": "kettles"},
]


def flat(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def built(tmp_path):
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    result = runner.invoke(cli.app, ["index", "build", str(tmp_path / "c.jsonl"), str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert "2 docs" in flat(result.output) and "bytes/token" in result.output
    return tmp_path


def test_stats_and_query(built):
    stats = runner.invoke(cli.app, ["index", "stats", str(built / "idx")])
    assert stats.exit_code == 0 and "bytes" in stats.output and "tokens" in stats.output
    query = runner.invoke(
        cli.app, ["index", "query", str(built / "idx"), "Yes, herons nest only on the basalt rocks.", "--all"]
    )
    assert query.exit_code == 0, query.output
    assert "herons nest only on the basalt" in flat(query.output) and "0@10" in query.output


def test_calibrate_prints_roc_and_a_threshold(built):
    rows = [
        {"text": "Vermilion herons nest only on the basalt cliffs of Ostrava Bay.", "label": "refuse"},
        {"text": "Copper kettles sing when the tide turns at Lindqvist harbour.", "label": "refuse"},
        {"text": "Herons are birds that live near water.", "label": "safe"},
        {"text": "A kettle boils water for tea.", "label": "safe"},
    ]
    (built / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(
        cli.app, ["index", "calibrate", str(built / "idx"), str(built / "labels.jsonl"), "--target-fpr", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "FPR 0.000, TPR 1.000 on 2 safe / 2 refuse examples" in flat(result.output)


def test_bad_input_exits_2(built, tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    cases = [
        (["index", "build", str(tmp_path / "empty.jsonl"), str(tmp_path / "x")], "corpus is empty"),
        (["index", "build", str(tmp_path / "c.jsonl"), str(tmp_path / "idx")], "already exists"),
        (["index", "stats", str(tmp_path / "nowhere")], "is not a redraft index"),
        (["index", "query", str(tmp_path / "nowhere"), "x"], "is not a redraft index"),
    ]
    for args, message in cases:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in flat(result.output)
    assert not (tmp_path / "x").exists()


def test_run_with_the_bci_critic(built, monkeypatch):
    from tests.graphs.helpers import scripted, use_llm

    llm = scripted(["Vermilion herons nest only on the basalt cliffs of Ostrava Bay.", "Herons like cliffs."], [])
    use_llm(monkeypatch, llm)
    db = str(built / "r.db")
    result = runner.invoke(
        cli.app,
        [
            "run",
            "--prompt",
            "Where do herons nest?",
            "--critic",
            "bci",
            "--index",
            str(built / "idx"),
            "--bci-threshold",
            "50",
            "--bci-min-len",
            "12",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "bci: FAIL" in flat(result.output) and "accepted" in result.output
