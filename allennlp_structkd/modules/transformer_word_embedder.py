"""
``structkd_transformer_words``: a Hugging Face encoder whose wordpieces are pooled into words, that
also exposes one chosen layer's word states for representation-level KD (XtremeDistil distils the
student's hidden states towards the teacher's layer ``l``, not necessarily the last).
"""
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import PretrainedTransformerMismatchedEmbedder, TokenEmbedder
from allennlp.nn import util

from allennlp_structkd.allennlp_private import unfold_long_states


def pool_wordpieces(wordpieces: torch.Tensor, offsets: torch.LongTensor, mode: str) -> torch.Tensor:
    """
    Word states ``(B, n_words, H)`` from wordpiece states ``(B, n_pieces, H)`` and inclusive word
    offsets ``(B, n_words, 2)``: the word's ``first`` wordpiece, or the ``avg`` of its wordpieces
    (the two modes of allennlp's mismatched embedder; words without wordpieces get zeros).
    """
    spans, span_mask = util.batched_span_select(wordpieces.contiguous(), offsets)
    spans = spans * span_mask.unsqueeze(-1)
    if mode == "first":
        return spans[:, :, 0, :]
    if mode == "avg":
        lengths = span_mask.sum(2, keepdim=True)
        return spans.sum(2) / lengths.clamp(min=1)
    raise ConfigurationError(f"sub_token_mode must be 'first' or 'avg', got {mode!r}")


@TokenEmbedder.register("structkd_transformer_words")
class TransformerWordEmbedder(PretrainedTransformerMismatchedEmbedder):
    """
    allennlp's ``pretrained_transformer_mismatched`` (same arguments, same output: the last layer
    pooled to words by ``sub_token_mode``, ``avg`` or ``first``), plus:

    # Parameters

    model_name : `str`, required
        A Hugging Face model name or local folder.
    representation_layer : `int`, optional (default = `None`)
        When set, the hidden states of that layer (0 = the embedding layer, 1..L the transformer
        layers, negative counts from the top), pooled to words the same way, are kept in
        ``self.representation`` ``(B, n_words, H)`` after each forward pass. A tagger using this
        embedder hands them to representation-level KD as its hidden states, in place of its
        encoder's output.
    **kwargs
        The arguments of ``pretrained_transformer_mismatched``.
    """

    def __init__(self, model_name: str, representation_layer: Optional[int] = None, **kwargs) -> None:
        super().__init__(model_name, **kwargs)
        self.representation_layer = representation_layer
        self.representation: Optional[torch.Tensor] = None
        transformer = self._matched_embedder.transformer_model
        if representation_layer is not None:
            layers = transformer.config.num_hidden_layers
            if not -(layers + 1) <= representation_layer <= layers:
                raise ConfigurationError(
                    f"representation_layer {representation_layer} out of range for {model_name!r} "
                    f"({layers} layers: 0 = embeddings, 1..{layers}, or negative from the top)")
            transformer.config.output_hidden_states = True

    def forward(self, token_ids, mask, offsets, wordpiece_mask, type_ids=None, segment_concat_mask=None) -> torch.Tensor:
        if self.representation_layer is None:
            self.representation = None
            return super().forward(token_ids, mask, offsets, wordpiece_mask, type_ids, segment_concat_mask)
        captured = {}

        def keep_hidden_states(module, args, output):
            captured["states"] = output.hidden_states[self.representation_layer]

        handle = self._matched_embedder.transformer_model.register_forward_hook(keep_hidden_states)
        try:
            words = super().forward(token_ids, mask, offsets, wordpiece_mask, type_ids, segment_concat_mask)
        finally:
            handle.remove()
        states = captured["states"]
        if states.size(0) != token_ids.size(0):  # the embedder folded long inputs into segments: unfold
            states = unfold_long_states(self._matched_embedder, states, token_ids, segment_concat_mask)
        self.representation = pool_wordpieces(states, offsets, str(self.sub_token_mode))
        return words
