"""Training on exported pairs: TRL's DPO plus the Contrastive Belief Deconfliction (CBD) term.

Needs the ``train`` extra (``pip install "redraft[train]"``); nothing here imports at package load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redraft.training.cbd import CBDDPOTrainer, bci_token_mask, train_dpo

__all__ = ["CBDDPOTrainer", "bci_token_mask", "train_dpo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from redraft.training import cbd

        return getattr(cbd, name)
    raise AttributeError(f"module 'redraft.training' has no attribute {name!r}")
