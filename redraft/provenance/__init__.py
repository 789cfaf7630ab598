"""Provenance: the suffix-array index over a belief corpus, BCI scoring and Prov-Decode.

Owned by the suffix-index issue; empty until it lands.
"""
