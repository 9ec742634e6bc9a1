from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.scalar_mix import ScalarMix
from allennlp.modules.token_embedders import TokenEmbedder
from allennlp.nn import util
from transformers import AutoModel

FUSIONS = ("scalar_mix", "average", "last_four", "layer")


@TokenEmbedder.register("structkd_kr2")
class KR2Embedder(TokenEmbedder):
    """
    KR2 (Fan et al.): a frozen pretrained transformer — the *KResource* — whose layers are fused
    and handed to the task model next to its own input representation (the *KReader*).

    Give it its own ``pretrained_transformer_mismatched`` indexer in the text field (e.g. under the
    key ``kresource``): ``BasicTextFieldEmbedder`` then concatenates its word-level output with the
    task model's own embeddings. Tokenizers may differ: wordpieces are averaged back onto words.

    The KResource is frozen for good: its parameters have ``requires_grad = False`` (so AllenNLP's
    optimizer never sees them), it runs under ``torch.no_grad()`` and stays in eval mode (no dropout).

    # Parameters

    model_name : `str`, required
        A Hugging Face model name or local folder.
    fusion : `str`, optional (default = `"scalar_mix"`)
        How the layers (1..L, not the input embeddings) are fused: ``scalar_mix`` (trainable
        softmax-normalised scalar weights and a scale, Peters et al.), ``average`` (all layers),
        ``last_four`` (the average of the last four), ``layer`` (the one given by ``layer``).
    layer : `int`, optional (default = `-1`)
        With ``fusion: "layer"``, which layer (1-based; negative counts from the top).
    projection_dim : `int`, optional (default = `None`)
        When set, a trainable MLP (linear + tanh) projects the fused vectors to this size.
    """

    def __init__(self, model_name: str, fusion: str = "scalar_mix", layer: int = -1,
                 projection_dim: Optional[int] = None) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ConfigurationError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.resource = AutoModel.from_pretrained(model_name)
        for parameter in self.resource.parameters():
            parameter.requires_grad_(False)
        self.resource.eval()
        self.num_layers = self.resource.config.num_hidden_layers
        if fusion == "layer" and not (1 <= abs(layer) <= self.num_layers):
            raise ConfigurationError(f"layer must be in 1..{self.num_layers} or -{self.num_layers}..-1, got {layer}")
        self.fusion = fusion
        self.layer = layer
        self.scalar_mix = ScalarMix(self.num_layers) if fusion == "scalar_mix" else None
        hidden = self.resource.config.hidden_size
        self.projection = (torch.nn.Sequential(torch.nn.Linear(hidden, projection_dim), torch.nn.Tanh())
                           if projection_dim else None)
        self.output_dim = projection_dim or hidden

    def train(self, mode: bool = True) -> "KR2Embedder":
        super().train(mode)
        self.resource.eval()  # frozen: never dropout
        return self

    def get_output_dim(self) -> int:
        return self.output_dim

    def fuse(self, layers) -> torch.Tensor:
        """``layers``: the L hidden-state tensors ``(B, wordpieces, H)`` of layers 1..L."""
        if self.fusion == "scalar_mix":
            assert self.scalar_mix is not None  # made for this fusion
            return self.scalar_mix(list(layers))
        if self.fusion == "average":
            return torch.stack(layers).mean(0)
        if self.fusion == "last_four":
            return torch.stack(layers[-4:]).mean(0)
        return layers[self.layer - 1 if self.layer > 0 else self.layer]

    def forward(self, token_ids: torch.LongTensor, mask: torch.BoolTensor, offsets: torch.LongTensor,
                wordpiece_mask: torch.BoolTensor, type_ids: Optional[torch.LongTensor] = None,
                segment_concat_mask: Optional[torch.BoolTensor] = None) -> torch.Tensor:
        with torch.no_grad():
            outputs = self.resource(input_ids=token_ids, attention_mask=wordpiece_mask,
                                    token_type_ids=type_ids, output_hidden_states=True)
        fused = self.fuse(tuple(h.detach() for h in outputs.hidden_states[1:]))
        # average each word's wordpieces, as pretrained_transformer_mismatched does
        span_embeddings, span_mask = util.batched_span_select(fused.contiguous(), offsets)
        span_mask = span_mask.unsqueeze(-1)
        span_embeddings = span_embeddings * span_mask
        lengths = span_mask.sum(2).clamp(min=1)
        words = span_embeddings.sum(2) / lengths
        if self.projection is not None:
            words = self.projection(words)
        return words * mask.unsqueeze(-1)
