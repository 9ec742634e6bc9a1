import torch
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.modules import FeedForward
from allennlp.nn import Activation

from allennlp_structkd.models.biaffine_parser import DependencyParserBase
from allennlp_structkd.structures import head_selection, second_order


@Model.register("structkd_second_order_parser")
class SecondOrderParser(DependencyParserBase):
    """
    The second-order parser of Wang & Tu (2020): the biaffine first-order scores plus sibling and
    grandparent scores, arc posteriors by mean-field variational inference
    (:func:`allennlp_structkd.structures.second_order.mfvi_marginals`, ``iterations`` updates),
    trained end to end on the cross-entropy of those posteriors; labels from the first-order part.

    Second-order scores are trilinear in three role-specific MLP projections of size
    ``second_order_dim`` (a rank-``second_order_dim`` triaffine), which keeps them ``O(n^3 d)``.

    # Parameters

    vocab : `Vocabulary`, required
        As :class:`DependencyParserBase`.
    second_order_dim : `int`, optional (default = `64`)
        Size of the three role-specific projections of the sibling and grandparent scorers.
    iterations : `int`, optional (default = `3`)
        Mean-field updates per forward pass.
    **kwargs
        The parameters of :class:`DependencyParserBase`.
    """

    def __init__(self, vocab: Vocabulary, second_order_dim: int = 64, iterations: int = 3, **kwargs) -> None:
        super().__init__(vocab, **kwargs)
        hidden = self.encoder.get_output_dim()
        elu = Activation.by_name("elu")()
        mlp = lambda: FeedForward(hidden, 1, second_order_dim, elu, 0.0)  # noqa: E731
        self.sibling_dependent, self.sibling_head, self.sibling_other = mlp(), mlp(), mlp()
        self.grand_dependent, self.grand_head, self.grand_parent = mlp(), mlp(), mlp()
        self.iterations = iterations

    def second_order_scores(self, encoded: torch.Tensor):
        """``(sibling (B, n, n, n) [m, h, s], grandparent (B, n, n, n) [m, h, g])``."""
        sibling = torch.einsum("bmk,bhk,bsk->bmhs", self.sibling_dependent(encoded), self.sibling_head(encoded),
                               self.sibling_other(encoded))
        grandparent = torch.einsum("bmk,bhk,bgk->bmhg", self.grand_dependent(encoded), self.grand_head(encoded),
                                   self.grand_parent(encoded))
        return sibling, grandparent

    def head_distribution(self, encoded: torch.Tensor, arc: torch.Tensor, mask: torch.Tensor) -> second_order.SecondOrderMeanField:
        sibling, grandparent = self.second_order_scores(encoded)
        return second_order.SecondOrderMeanField(arc, mask, sibling, grandparent, self.iterations)

    def head_log_probs(self, encoded: torch.Tensor, arc: torch.Tensor, mask: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        sibling, grandparent = self.second_order_scores(encoded)
        logits = second_order.mfvi_logits(arc * scale, mask, sibling * scale, grandparent * scale, self.iterations)
        possible = head_selection.arc_mask(mask)
        log_probs = logits.masked_fill(~possible, second_order.NEG).log_softmax(dim=2)
        return log_probs.masked_fill(~possible, float("-inf"))
