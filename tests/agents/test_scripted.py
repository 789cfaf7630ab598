import pytest

from redraft.agents.base import SamplingParams
from redraft.agents.testing import ScriptedLLM

USER = [{"role": "user", "content": "hi"}]


def test_replays_in_order_and_records_calls():
    llm = ScriptedLLM(["a", lambda conv: conv[-1]["content"].upper()])
    out = llm.generate([USER, USER], SamplingParams())
    assert [c.text for c in out] == ["a", "HI"]
    assert llm.calls == [[USER, USER]]
    assert llm.remaining == 0


def test_stop_strings_and_length_limits_like_a_real_backend():
    llm = ScriptedLLM(["one. two. three", "abcdefgh"])
    stop, length = llm.generate([USER, USER], SamplingParams(stop=(". t",), max_new_tokens=4))
    assert (stop.text, stop.finish_reason) == ("one", "stop")
    assert (length.text, length.finish_reason, len(length.token_ids)) == ("abcd", "length", 4)


def test_running_out_of_replies_is_a_clear_error():
    llm = ScriptedLLM(["only one"])
    with pytest.raises(RuntimeError, match="ran out of replies: 2 requested, 1 left"):
        llm.generate([USER, USER], SamplingParams())
