"""
Biaffine scores without a scalar bias, as SuPar's ``Biaffine``.

AllenNLP's ``BilinearMatrixAttention`` adds one learned scalar to every score. Every score of
the project's biaffine scorers feeds a softmax (over heads, over labels, over span classes), where
a constant cancels: that scalar's gradient is zero in exact arithmetic, a parameter that cannot
learn, and what rounding leaves of it differs from one processor to another.
"""
import torch


class Biaffine(torch.nn.Module):
    """
    ``s[b, i, j, o] = [x_i; 1]ᵀ W_o [y_j; 1]``, the ones appended only where ``bias_x`` /
    ``bias_y`` say: with ``bias_x`` a term of ``y_j`` alone, with ``bias_y`` one of ``x_i`` alone,
    with both a constant per output ``o`` too.

    An arc scorer whose scores are normalised over heads ``j`` should leave ``bias_y`` off: a term
    of the dependent ``x_i`` alone would cancel in that softmax (SuPar's arc scorer does the same).

    # Parameters

    x_dim : `int`, required
        Size of the first input's vectors.
    y_dim : `int`, required
        Size of the second input's vectors.
    out_dim : `int`, optional (default = `1`)
        Number of scores per pair (labels, classes).
    bias_x : `bool`, optional (default = `True`)
        Append a 1 to ``x``.
    bias_y : `bool`, optional (default = `True`)
        Append a 1 to ``y``.
    """

    def __init__(self, x_dim: int, y_dim: int, out_dim: int = 1, bias_x: bool = True, bias_y: bool = True) -> None:
        super().__init__()
        self.bias_x, self.bias_y = bias_x, bias_y
        self.weight = torch.nn.Parameter(torch.empty(out_dim, x_dim + bias_x, y_dim + bias_y))
        torch.nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, n, x_dim)``, ``y`` ``(B, m, y_dim)`` → scores ``(B, n, m, out_dim)``."""
        if self.bias_x:
            x = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)
        if self.bias_y:
            y = torch.cat([y, y.new_ones(*y.shape[:-1], 1)], dim=-1)
        return torch.einsum("bxi,oij,byj->bxyo", x, self.weight, y)
