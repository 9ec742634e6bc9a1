"""``structkd_layer_mix``: a learned mix of a frozen encoder's cached layers (``structkd_frozen_encoder``)."""
import torch
from allennlp.modules.scalar_mix import ScalarMix
from allennlp.modules.token_embedders import TokenEmbedder


@TokenEmbedder.register("structkd_layer_mix")
class LayerMixEmbedder(TokenEmbedder):
    """
    ``features`` ``(B, n, K, H)`` (from the ``structkd_frozen_encoder`` indexer) → ``(B, n, H)``: the
    scalar mix ``γ Σ_k softmax(s)_k h_k`` of Peters et al. 2018 (AllenNLP's ``ScalarMix``), the only
    trained part; the encoder itself stays frozen and its features cached.

    # Parameters

    num_layers : `int`
        K, the number of layers the indexer keeps.
    hidden_size : `int`
        H, the encoder's hidden size.
    dropout : `float`, optional (default = `0.0`)
    """

    def __init__(self, num_layers: int, hidden_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.mix = ScalarMix(num_layers)
        self.hidden_size = hidden_size
        self.dropout = torch.nn.Dropout(dropout) if dropout else None

    def get_output_dim(self) -> int:
        return self.hidden_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(list(features.unbind(dim=2)))
        return self.dropout(mixed) if self.dropout is not None else mixed
