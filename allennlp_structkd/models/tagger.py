"""
The shared body of the project's sequence labelers: embedder → optional encoder → dropout →
linear scores over labels, the gold and KD losses, decoding and metrics. The decoder (CRF or
MaxEnt) is what the subclasses add; nothing of a particular KD method lives here beyond the
``kd_loss`` hook.
"""
from typing import Any, Dict, List, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.modules import Seq2SeqEncoder, TextFieldEmbedder
from allennlp.nn import InitializerApplicator, util
from allennlp.training.metrics import CategoricalAccuracy

from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.protocol import KDStudent, KDTeacher
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher
from allennlp_structkd.models.finite_weights import FiniteWeightsModel
from allennlp_structkd.modules.transformer_word_embedder import TransformerWordEmbedder
from allennlp_structkd.settings import reject_unknown_settings
from allennlp_structkd.structures.potentials import Potentials
from allennlp_structkd.training.metrics import SpanF1

SPAN_ENCODINGS = ("BIO", "IOB1", "BIOES", "BIOUL")


class SequenceTagger(FiniteWeightsModel, KDTeacher, KDStudent):
    """
    # Parameters

    vocab : `Vocabulary`, required
        Its ``label_namespace`` gives the labels.
    text_field_embedder : `TextFieldEmbedder`, required
        Embeds ``tokens`` (words, characters, a transformer, ...).
    encoder : `Seq2SeqEncoder`, optional (default = `None`)
        E.g. a BiLSTM over the embeddings; without one the embeddings are projected directly.
    label_namespace : `str`, optional (default = `"labels"`)
        The vocabulary namespace of the labels.
    label_encoding : `str`, optional (default = `None`)
        ``BIO``, ``IOB1``, ``BIOES`` (``BIOUL``) or None; with a span encoding the model reports span
        F1 (and a CRF forbids invalid transitions).
    dropout : `float`, optional (default = `0.0`)
        Applied to the embeddings and the encoder output.
    kd_loss : `KDLoss`, optional (default = `None`)
        A :class:`~allennlp_structkd.kd.losses.KDLoss`; used when the batch carries teacher targets
        (see the ``structkd_teacher`` reader).
    kd_weight : `float`, optional (default = `1.0`)
        λ in ``λ·L_KD + (1-λ)·L_gold`` for labeled sentences (unlabeled ones use L_KD only); a
        ``teacher_annealing`` callback may change it during training.
    initializer : `InitializerApplicator`, optional (default = `InitializerApplicator()`)
        Used to initialise the parameters.
    """

    _kd_weight: torch.Tensor  # a buffer (register_buffer), so that it moves and saves with the model

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Optional[Seq2SeqEncoder] = None,
        label_namespace: str = "labels",
        label_encoding: Optional[str] = None,
        dropout: float = 0.0,
        kd_loss: Optional[KDLoss] = None,
        kd_weight: float = 1.0,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, Model, kwargs)
        super().__init__(vocab, **kwargs)
        self.label_namespace = label_namespace
        self.num_labels = vocab.get_vocab_size(label_namespace)
        if self.num_labels == 0:
            raise ConfigurationError(f"the vocabulary has no labels in namespace {label_namespace!r}")
        self.labels: List[str] = [vocab.get_token_from_index(i, label_namespace) for i in range(self.num_labels)]
        self.text_field_embedder = text_field_embedder
        self.encoder = encoder
        output_dim = encoder.get_output_dim() if encoder is not None else text_field_embedder.get_output_dim()
        if encoder is not None and encoder.get_input_dim() != text_field_embedder.get_output_dim():
            raise ConfigurationError(
                f"encoder input dim {encoder.get_input_dim()} != embedder output dim {text_field_embedder.get_output_dim()}"
            )
        self.dropout = torch.nn.Dropout(dropout) if dropout > 0 else None
        self.tag_projection = torch.nn.Linear(output_dim, self.num_labels)
        if label_encoding is not None and label_encoding.upper() not in SPAN_ENCODINGS:
            raise ConfigurationError(f"label_encoding must be one of {SPAN_ENCODINGS} or null, got {label_encoding!r}")
        self.label_encoding = None if label_encoding is None else label_encoding.upper()
        self.kd_loss = kd_loss
        # a buffer, so that an archive keeps the λ its weights were last trained with
        self.register_buffer("_kd_weight", torch.tensor(float(kd_weight)))
        self._accuracy = CategoricalAccuracy()
        self._span_f1 = SpanF1(vocab, label_namespace) if self.label_encoding else None
        initializer(self)

    @property
    def kd_weight(self) -> float:
        return float(self._kd_weight)

    @kd_weight.setter
    def kd_weight(self, value: float) -> None:
        self._kd_weight.fill_(float(value))

    # -- to be provided by the decoder -------------------------------------------------------
    def potentials(self, emissions: torch.Tensor, mask: torch.Tensor) -> Potentials:
        raise NotImplementedError

    def decode(self, potentials: Potentials, with_probs: bool = True):
        """``(tags (B, n), probs (B, n, L) or None)``: the best labels and per-token confidences."""
        raise NotImplementedError

    def gold_loss(self, potentials: Potentials, tags: torch.Tensor) -> torch.Tensor:
        """``-log P(gold | x)`` per sentence, ``(B,)``."""
        return -potentials.sequence_log_probs(tags.unsqueeze(1)).squeeze(1)

    # -- the model ---------------------------------------------------------------------------
    def emissions(self, tokens: TextFieldTensors):
        """``(scores (B, n, L), mask (B, n))``; the hidden states behind the scores go to ``self._hidden``."""
        mask = util.get_text_field_mask(tokens)
        embedded = self.text_field_embedder(tokens)
        if self.dropout is not None:
            embedded = self.dropout(embedded)
        encoded = self.encoder(embedded, mask) if self.encoder is not None else embedded
        # what representation-level KD (XtremeDistil) compares: the encoder's output, or a chosen
        # transformer layer when the embedder exposes one (structkd_transformer_words)
        self._hidden = encoded
        for module in self.text_field_embedder.modules():
            if isinstance(module, TransformerWordEmbedder) and module.representation is not None:
                self._hidden = module.representation
        if self.dropout is not None:
            encoded = self.dropout(encoded)
        return self.tag_projection(encoded), mask

    teacher_structure = SequenceTeacher

    def teacher_distribution(self, tokens: TextFieldTensors, **fields) -> SequenceTeacher:
        """This model as a teacher: its distribution over label sequences (every kind of target), with its best labels
        as pseudo gold; labels in ``self.labels`` (namespace ``self.label_namespace``)."""
        potentials = self.potentials(*self.emissions(tokens))
        best, _ = self.decode(potentials, with_probs=False)
        return SequenceTeacher(potentials, best, hidden=self._hidden)

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        tags: Optional[torch.LongTensor] = None,
        metadata: Optional[List[Dict[str, Any]]] = None,
        has_gold: Optional[torch.Tensor] = None,
        teacher_targets: Optional[Dict[str, torch.Tensor]] = None,
        **other_fields: Any,
    ) -> Dict[str, torch.Tensor]:
        """
        Fields of an instance that a tagger does not use (a reader's PoS or head columns) are
        accepted and ignored, so that one reader serves taggers and parsers.

        ``teacher_targets`` (from the ``structkd_teacher`` reader): what ``kd_loss`` needs from the
        teacher, already in this model's label order; ``has_gold`` ``(B,)``: 0 for unlabeled
        sentences, whose ``tags`` are placeholders.
        """
        emissions, mask = self.emissions(tokens)
        potentials = self.potentials(emissions, mask)
        # confidences are for predictions: a training step only needs the best labels (for metrics)
        predicted, probs = self.decode(potentials, with_probs=not self.training)
        output: Dict[str, Any] = {"logits": emissions, "mask": mask, "tags": predicted}
        if probs is not None:
            output["probs"] = probs
        if metadata is not None:
            output["words"] = [m["words"] for m in metadata]
            output["lang"] = [m.get("lang") for m in metadata]

        targets = teacher_targets or {}
        if tags is None and not targets:
            return output

        batch = emissions.size(0)
        gold = torch.ones(batch, dtype=torch.bool, device=emissions.device)
        if has_gold is not None:
            gold = has_gold.view(-1).bool()
        if tags is None:
            gold = torch.zeros_like(gold)
        per_sentence = emissions.new_zeros(batch)
        weight = torch.where(gold, emissions.new_tensor(self.kd_weight), emissions.new_tensor(1.0))
        if tags is not None and gold.any():
            gold_loss = self.gold_loss(potentials, tags)
            per_sentence = per_sentence + torch.where(gold, gold_loss, torch.zeros_like(gold_loss))
            output["gold_loss"] = gold_loss
        if targets:
            if self.kd_loss is None:
                raise ConfigurationError("the batch carries teacher targets but the model has no kd_loss")
            self.kd_loss.check_targets(targets)
            kd = self.kd_loss(potentials, {k: v.to(emissions.dtype) if v.is_floating_point() else v
                                           for k, v in targets.items()}, student_hidden=self._hidden)
            output["kd_loss"] = kd
            per_sentence = torch.where(gold, (1 - weight) * per_sentence, per_sentence) + weight * kd
        output["loss"] = per_sentence.mean()

        if tags is not None and gold.any():
            scored = gold.unsqueeze(1) & mask
            one_hot = torch.nn.functional.one_hot(predicted, self.num_labels).to(emissions.dtype)
            self._accuracy(one_hot, tags, scored)
            if self._span_f1 is not None:
                self._span_f1(predicted[gold], tags[gold], mask[gold])
        return output

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Label strings, the confidence of each predicted label, and the full per-token distributions."""
        lengths = output_dict["mask"].long().sum(1).tolist()
        tags = output_dict["tags"]
        probs = output_dict.get("probs")
        if probs is None:  # a model in training mode: one-hot confidences
            probs = torch.nn.functional.one_hot(tags, self.num_labels).to(output_dict["logits"].dtype)
        chosen = probs.gather(2, tags.unsqueeze(2)).squeeze(2).tolist()
        output_dict["tags"] = [[self.labels[t] for t in row[:n]] for row, n in zip(tags.tolist(), lengths)]
        output_dict["tag_probs"] = [row[:n] for row, n in zip(chosen, lengths)]
        output_dict["probs"] = [row[:n].tolist() for row, n in zip(probs, lengths)]
        output_dict["labels"] = [self.labels] * len(lengths)  # per instance, so that batches split cleanly
        for key in ("logits", "mask", "gold_loss", "kd_loss", "loss"):
            output_dict.pop(key, None)
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = {"accuracy": self._accuracy.get_metric(reset)}
        if self._span_f1 is not None:
            span = self._span_f1.get_metric(reset)
            metrics.update({k: v for k, v in span.items() if k.endswith("overall")})
        return metrics

    default_predictor = "structkd_tagger"
