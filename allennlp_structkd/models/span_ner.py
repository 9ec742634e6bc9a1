from typing import Any, Dict, List, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.modules import FeedForward, Seq2SeqEncoder, TextFieldEmbedder
from allennlp.nn import Activation, InitializerApplicator, util

from allennlp_structkd.kd.protocol import KDTeacher
from allennlp_structkd.kd.teacher_distributions import SpanTeacher
from allennlp_structkd.models.finite_weights import FiniteWeightsModel
from allennlp_structkd.modules.biaffine import Biaffine
from allennlp_structkd.settings import reject_unknown_settings
from allennlp_structkd.structures import span_dp
from allennlp_structkd.training.metrics import SpanF1


@Model.register("structkd_span_ner")
class SpanNer(FiniteWeightsModel, KDTeacher):
    """
    NER as dependency parsing (Yu et al. 2020): a biaffine scorer of every span (start i, end j)
    over the entity types plus "no entity", trained with a softmax cross-entropy per span
    (i <= j within the sentence); decoding takes the best set of non-overlapping spans exactly
    (:func:`allennlp_structkd.structures.span_dp.decode`, where a span of type c scores its log-odds
    ``s(i, j, c) - s(i, j, none)``). Reads BIOES ``tags`` and the ``span_labels`` of the
    ``structkd_conll_ner`` reader (``span_labels: true``); reports span F1.

    As a teacher (Case 4 of Wang et al. 2021) it gives BIOES marginals of that structured
    distribution, ``span_dp.bioes_marginals``, over the labels ``span_dp.bioes_label_names(types)``,
    which a MaxEnt BIOES student takes with the ``structural`` objective.

    # Parameters

    vocab : `Vocabulary`, required
        Its ``span_labels`` namespace gives the entity types.
    text_field_embedder : `TextFieldEmbedder`, required
        Embeds the words.
    encoder : `Seq2SeqEncoder`, required
        E.g. a BiLSTM; its states at a span's start and end feed the biaffine span scorer.
    span_representation_dim : `int`, optional (default = `128`)
        Size of the start and end MLP projections.
    dropout : `float`, optional (default = `0.2`)
        On the embeddings, the encoder output and the projections.
    initializer : `InitializerApplicator`, optional (default = `InitializerApplicator()`)
        Used to initialise the parameters.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Seq2SeqEncoder,
        span_representation_dim: int = 128,
        dropout: float = 0.2,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, Model, kwargs)
        super().__init__(vocab, **kwargs)
        self.text_field_embedder = text_field_embedder
        self.encoder = encoder
        self.types = [vocab.get_token_from_index(i, "span_labels") for i in range(vocab.get_vocab_size("span_labels"))]
        if not self.types:
            raise ConfigurationError("no entity types: read with structkd_conll_ner and span_labels: true")
        self.labels = span_dp.bioes_label_names(self.types)
        self.label_namespace = "labels"
        hidden = encoder.get_output_dim()
        elu = Activation.by_name("elu")()
        self.start_mlp = FeedForward(hidden, 1, span_representation_dim, elu, dropout)
        self.end_mlp = FeedForward(hidden, 1, span_representation_dim, elu, dropout)
        self.scorer = Biaffine(span_representation_dim, span_representation_dim, len(self.types) + 1)
        self.dropout = torch.nn.Dropout(dropout)
        self._span_f1 = SpanF1(vocab, "labels")
        self._bioes = {name: i for i, name in enumerate(self.labels)}
        initializer(self)

    def span_logits(self, tokens: TextFieldTensors):
        """``(logits (B, n, n, C+1) [start, end, class], class 0 = no entity; mask (B, n))``."""
        mask = util.get_text_field_mask(tokens)
        encoded = self.dropout(self.encoder(self.dropout(self.text_field_embedder(tokens)), mask))
        logits = self.scorer(self.start_mlp(encoded), self.end_mlp(encoded))
        return logits, mask

    @staticmethod
    def log_odds(logits: torch.Tensor) -> torch.Tensor:
        """Span potentials of the structured model: ``log P(c | span) - log P(none | span)``."""
        log_probs = logits.log_softmax(dim=3)
        return log_probs[..., 1:] - log_probs[..., :1]

    teacher_structure = SpanTeacher

    def teacher_distribution(self, tokens: TextFieldTensors, **fields) -> SpanTeacher:
        """Case 4: the exact distribution over sets of labeled spans, read by a token-level student as BIOES
        marginals (:class:`~allennlp_structkd.kd.teacher_distributions.SpanTeacher`)."""
        logits, mask = self.span_logits(tokens)
        chart = span_dp.SpanChart(self.log_odds(logits), mask)
        return SpanTeacher(chart, chart.argmax())

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        span_labels: Optional[torch.Tensor] = None,
        tags: Optional[torch.Tensor] = None,
        metadata: Optional[List[Dict[str, Any]]] = None,
        **other_fields: Any,
    ) -> Dict[str, torch.Tensor]:
        logits, mask = self.span_logits(tokens)
        potentials = self.log_odds(logits.detach())
        best, _ = span_dp.decode(potentials, mask)
        output: Dict[str, Any] = {"bioes": best, "mask": mask}
        if not self.training:  # exact per-token BIOES marginals of the span model, as confidences
            output["probs"] = span_dp.bioes_marginals(potentials, mask).to(logits.dtype)
        if metadata is not None:
            output["words"] = [m["words"] for m in metadata]
        if span_labels is not None:
            n = mask.size(1)
            gold = (span_labels.long() + 1).clamp(min=0)  # -1 (no span) -> 0 (no entity)
            valid = torch.ones(n, n, dtype=torch.bool, device=mask.device).triu().unsqueeze(0) & mask.unsqueeze(1) & mask.unsqueeze(2)
            nll = -logits.log_softmax(dim=3).gather(3, gold.unsqueeze(3)).squeeze(3)
            output["loss"] = torch.where(valid, nll, torch.zeros_like(nll)).flatten(1).sum(1).mean()
        if tags is not None:
            lengths = mask.long().sum(1).tolist()
            predicted = [[self.labels[t] for t in row[:k]] for row, k in zip(best.tolist(), lengths)]
            gold_tags = [[self.vocab.get_token_from_index(t, "labels") for t in row[:k]] for row, k in zip(tags.tolist(), lengths)]
            self._span_f1.add_sequences(predicted, gold_tags)
        return output

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        lengths = output_dict.pop("mask").long().sum(1).tolist()
        best = output_dict.pop("bioes")
        output_dict["tags"] = [[self.labels[t] for t in row[:k]] for row, k in zip(best.tolist(), lengths)]
        probs = output_dict.get("probs")
        if probs is not None:
            chosen = probs.gather(2, best.unsqueeze(2)).squeeze(2).tolist()
            output_dict["tag_probs"] = [row[:k] for row, k in zip(chosen, lengths)]
            output_dict["probs"] = [row[:k].tolist() for row, k in zip(probs, lengths)]
            output_dict["labels"] = [self.labels] * len(lengths)
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return {k: v for k, v in self._span_f1.get_metric(reset).items() if k.endswith("overall")}

    default_predictor = "structkd_tagger"
