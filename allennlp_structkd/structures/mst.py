"""
Maximum spanning trees of head scores (Chu-Liu-Edmonds): the best dependency tree of each
sentence, for decoding and Top-1 targets. Conventions of :mod:`head_selection`: the root at
position 0, scores ``[dependent, head]``. The algorithm is the serving package's copy of AllenNLP's
(``structkd_spacy.mst``, unchanged but for its error type), so that training and a served student decode
the same trees, ties included, from one copy.
"""
import numpy
import torch

from structkd_spacy.mst import decode_mst

__all__ = ["mst_heads"]


def mst_heads(head_log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """
    The maximum spanning tree (Chu-Liu-Edmonds, AllenNLP's ``decode_mst``) of each sentence:
    ``head_log_probs`` ``(B, n, n)`` ``[dependent, head]``, mask ``(B, n)`` with the root at 0.
    Returns heads ``(B, n)`` (0 at the root and padding). A loop over sentences: evaluation only.
    """
    energy = head_log_probs.detach().exp().transpose(1, 2).cpu().numpy()  # [head, dependent]
    lengths = mask.long().sum(1).tolist()
    heads = numpy.zeros(mask.shape, dtype=numpy.int64)
    for b, length in enumerate(lengths):
        if length <= 1:
            continue
        predicted, _ = decode_mst(energy[b], length, has_labels=False)
        heads[b, 1:length] = predicted[1:length]
    return torch.from_numpy(heads).to(mask.device)
