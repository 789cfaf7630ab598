"""Training on exported pairs: TRL's DPO plus the Contrastive Belief Deconfliction (CBD) term.

Needs the ``train`` extra (``pip install "redraft[train]"``); nothing here imports at package load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft.training.cbd import CBDDPOTrainer, bci_token_mask, train_dpo

__all__ = ["CBDDPOTrainer", "bci_token_mask", "train_dpo"]


__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "redraft.training.cbd"))
