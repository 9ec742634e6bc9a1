"""
Exact (and, for second-order parsing, mean-field) structured inference on tensors.

Small pure functions, batched and masked, in log space, differentiable; no Python loop over batch
elements. Each module's docstring gives its shape conventions.
"""
from allennlp_structkd.structures import head_selection, linear_chain, mst, rel_pos, second_order, span_dp

__all__ = ["linear_chain", "span_dp", "head_selection", "mst", "second_order", "rel_pos"]
