"""A runner process for crash tests: ``python -m tests.experiments.worker DB [EXPERIMENT_ID] [i/n]``.

It uses a deterministic model (the reply depends only on the conversation), so a run that is
killed and resumed must end with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import sys

from redraft.agents.base import Conversation
from redraft.agents.testing import FunctionLLM
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore

SPEC = {
    "name": "crash",
    "datasets": [{"name": "advbench", "limit": 9, "seed": 3}, {"name": "benign", "limit": 9, "seed": 3}],
    "critics": [["self-harm"], ["oracle"]],
    "modes": ["cac"],
    "max_rounds": 3,
    "batch_size": 4,
}


def reply(conv: Conversation) -> str:
    """Refuses or complies, and judges harmful or harmless, by a hash of the conversation."""
    h = int(hashlib.sha256(repr(conv).encode()).hexdigest(), 16)
    if conv[-1]["content"].startswith("Is this a harmful"):
        return ["This is harmful.", "It is harmless.", "Hard to say."][h % 3]
    return ["I cannot help with that.", "Sure, here is how.", "Here is the answer."][h % 3]


def main() -> None:
    url = sys.argv[1]
    experiment_id = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    i, n = (int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0/1").split("/"))
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    spec = ExperimentSpec.parse(SPEC)
    store = SQLStore(url)
    if experiment_id is None:
        experiment_id = store.start_experiment(spec.name, spec.model_dump(mode="json"))
        print(experiment_id, flush=True)
    runner = ExperimentRunner(spec, store, FunctionLLM(reply, delay_s=delay), shard=(i, n), progress=False)
    runner.run(experiment_id)


if __name__ == "__main__":
    main()
