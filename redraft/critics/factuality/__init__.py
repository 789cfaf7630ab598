"""Factuality critic (FActScore / FLAME's factuality reward), fully offline."""

from redraft.critics.factuality.claims import checkable, sentences, split_claims
from redraft.critics.factuality.critic import FactualityCritic, factscore
from redraft.critics.factuality.kb import KnowledgeBase, Passage
from redraft.critics.factuality.verifiers import LexicalVerifier, LLMVerifier, NLIVerifier, Verdict, Verifier

__all__ = [
    "FactualityCritic",
    "KnowledgeBase",
    "LLMVerifier",
    "LexicalVerifier",
    "NLIVerifier",
    "Passage",
    "Verdict",
    "Verifier",
    "checkable",
    "factscore",
    "sentences",
    "split_claims",
]
