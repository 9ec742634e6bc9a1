"""
Exact (and, for second-order parsing, mean-field) structured inference on tensors.

Small pure functions, batched and masked, in log space, differentiable; no Python loop over batch
elements. Each module's docstring gives its shape conventions. Each output structure is also one
distribution object with the same surface (:mod:`~allennlp_structkd.structures.distribution`):
``TokenSoftmax``, ``LinearChain``, ``HeadSelection``, ``SecondOrderMeanField``, ``SpanChart``.
"""
from allennlp_structkd.structures import (
                                          distribution,
                                          head_selection,
                                          linear_chain,
                                          mst,
                                          rel_pos,
                                          second_order,
                                          span_dp,
                                          tempering,
                                          token_softmax,
)
from allennlp_structkd.structures.distribution import Marginals, StructuredDistribution
from allennlp_structkd.structures.head_selection import HeadSelection
from allennlp_structkd.structures.linear_chain import LinearChain
from allennlp_structkd.structures.second_order import SecondOrderMeanField
from allennlp_structkd.structures.span_dp import SpanChart
from allennlp_structkd.structures.token_softmax import TokenSoftmax

__all__ = ["linear_chain", "span_dp", "head_selection", "mst", "second_order", "rel_pos", "distribution", "tempering",
           "token_softmax", "Marginals", "StructuredDistribution", "TokenSoftmax", "LinearChain", "HeadSelection",
           "SecondOrderMeanField", "SpanChart"]
