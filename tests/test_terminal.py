"""Model and file text cannot drive the terminal: escape sequences print as visible escapes and
Rich markup in a draft prints as text, in `redraft run`, `redraft show` and the human critic's panel."""

from __future__ import annotations

from typer.testing import CliRunner

from redraft import cli
from redraft.agents.testing import ScriptedLLM
from redraft.cli._terminal import term_safe
from tests.graphs.helpers import use_llm

TITLE, CLIPBOARD, CLEAR, CSI = "\x1b]0;pwned\x07", "\x1b]52;c;cm0gLXJmIH4=\x07", "\x1b[2J", "\x9b31m"
FAKE = "[bold green]all critics passed[/]"
HOSTILE = f"{TITLE}{CLIPBOARD}{CLEAR}{CSI}Lyon. {FAKE}"


def test_term_safe_shows_every_control_character_and_keeps_text():
    assert term_safe(HOSTILE) == (
        "\\x1b]0;pwned\\x07\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\x9b31mLyon. [bold green]all critics passed[/]"
    )
    assert term_safe("été — naïve\ttab\nline") == "été — naïve\ttab\nline"


def check(output: str) -> None:
    assert not any(ch in output for ch in "\x1b\x9b\x07"), repr(output)
    assert "\\x1b]0;pwned" in output and "\\x9b31m" in output  # shown, visibly
    assert FAKE in output  # markup in model text is text, not styling


def test_run_and_show_print_hostile_text_inertly(monkeypatch, tmp_path):
    use_llm(monkeypatch, ScriptedLLM([HOSTILE, f"VERDICT: INCORRECT {TITLE}{FAKE}"]))  # draft, then the self-check
    db = str(tmp_path / "t.db")
    args = ["run", "--prompt", f"q {TITLE}", "--critic", "self", "--max-rounds", "1", "--db", db]
    ran = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, args)
    assert ran.exit_code == 0, ran.output
    check(ran.output)
    shown = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, ["show", "--db", db])
    [run_id] = [line.split()[1] for line in shown.output.splitlines() if line.startswith("│ ")][:1]
    shown = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, ["show", run_id, "--db", db])
    assert shown.exit_code == 0, shown.output
    check(shown.output)


def test_the_human_critics_panel_prints_hostile_text_inertly(monkeypatch, tmp_path):
    use_llm(monkeypatch, ScriptedLLM([HOSTILE]))
    args = ["run", "--critic", "human", "--prompt", "q", "--db", str(tmp_path / "h.db"), "--max-rounds", "1"]
    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, args, input="y\n\n")
    assert result.exit_code == 0, result.output
    assert "your verdict" in result.output
    check(result.output)


def test_invisible_and_reordering_characters_and_emoji_codes_print_as_text(monkeypatch, tmp_path):
    """Bidi overrides and isolates, zero-width and tag characters and U+2028 change what a reader
    sees without showing themselves; Rich would turn ":white_check_mark:" into a check mark."""
    hidden = "Paris\u202e.noyL\u2066x\u2069 zero\u200bwidth\u2028tag\U000e0041 :white_check_mark:"
    use_llm(monkeypatch, ScriptedLLM([hidden, "VERDICT: CORRECT"]))
    args = ["run", "--prompt", "q", "--critic", "self", "--max-rounds", "1", "--db", str(tmp_path / "t.db")]
    ran = CliRunner(env={"COLUMNS": "300"}).invoke(cli.app, args)
    assert ran.exit_code == 0, ran.output
    for ch in "\u202e\u2066\u2069\u200b\u2028\U000e0041\u2705":
        assert ch not in ran.output, repr(ch)
    assert "\\u202e" in ran.output and "\\U000e0041" in ran.output and ":white_check_mark:" in ran.output
