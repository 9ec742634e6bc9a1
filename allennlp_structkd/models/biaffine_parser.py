"""
Graph-based dependency parsers: the biaffine parser of Dozat & Manning (2017) and, in
``second_order_parser.py``, its second-order extension (Wang & Tu 2020).

Conventions of :mod:`allennlp_structkd.structures.head_selection`: position 0 is a learned root
prepended to the sentence, scores are ``[dependent, head]``; ``head_indices`` from the readers are
already in that numbering (0 = root, word k is position k).
"""
from typing import Any, Dict, List, Optional, Sequence

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.modules import Embedding, FeedForward, Seq2SeqEncoder, TextFieldEmbedder
from allennlp.nn import Activation, InitializerApplicator, util

from allennlp_structkd.kd.protocol import KDTeacher
from allennlp_structkd.kd.teacher_distributions import ParseTeacher
from allennlp_structkd.models.finite_weights import FiniteWeightsModel
from allennlp_structkd.modules.biaffine import Biaffine
from allennlp_structkd.settings import reject_unknown_settings
from allennlp_structkd.structures import head_selection
from allennlp_structkd.structures.distribution import StructuredDistribution
from allennlp_structkd.structures.mst import mst_heads
from allennlp_structkd.training.metrics import AttachmentScores
from allennlp_structkd.training.metrics.attachment_scores import PUNCTUATION_TAGS, is_punctuation


class DependencyParserBase(FiniteWeightsModel, KDTeacher):
    """
    Words (+ optional PoS embeddings) → encoder → a learned root vector prepended → MLPs →
    biaffine arc scores ``(B, n+1, n+1)`` and biaffine label scores ``(B, n+1, n+1, R)``.

    Training: head selection (cross-entropy over each word's possible heads, no self-loops) plus
    the cross-entropy of the gold label at the gold head. Evaluation: MST decoding (a tree), the
    best label at each chosen head; UAS/LAS without punctuation (``punctuation_tags``, by the PoS in
    ``upos``) unless ``ignore_punctuation`` is false. Without ``head_tags`` (the PTB ``.dp`` files)
    only UAS is meaningful.

    # Parameters

    vocab : `Vocabulary`, required
        Its ``head_tags`` namespace gives the dependency labels.
    text_field_embedder : `TextFieldEmbedder`, required
        Embeds the words.
    encoder : `Seq2SeqEncoder`, required
        E.g. a BiLSTM over the word (and PoS) embeddings.
    arc_representation_dim : `int`, optional (default = `256`)
        Size of the head and dependent MLP projections of the biaffine arc scorer.
    label_representation_dim : `int`, optional (default = `128`)
        Size of the projections of the biaffine label scorer.
    pos_tag_embedding : `Embedding`, optional (default = `None`)
        Embeds the ``pos_tags`` field and concatenates it to the words; a teacher with one reads PoS.
    dropout : `float`, optional (default = `0.2`)
        On the embeddings, the encoder output and the MLPs.
    use_mst_decoding_for_validation : `bool`, optional (default = `True`)
        Decode well-formed trees (MST) at validation; otherwise each word's best head.
    ignore_punctuation : `bool`, optional (default = `True`)
        Leave punctuation out of UAS/LAS.
    punctuation_tags : `Sequence[str]`, optional (default = `PUNCTUATION_TAGS`)
        The PoS tags that make a word punctuation.
    initializer : `InitializerApplicator`, optional (default = `InitializerApplicator()`)
        Used to initialise the parameters.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Seq2SeqEncoder,
        arc_representation_dim: int = 256,
        label_representation_dim: int = 128,
        pos_tag_embedding: Optional[Embedding] = None,
        dropout: float = 0.2,
        use_mst_decoding_for_validation: bool = True,
        ignore_punctuation: bool = True,
        punctuation_tags: Sequence[str] = PUNCTUATION_TAGS,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, Model, kwargs)
        super().__init__(vocab, **kwargs)
        self.text_field_embedder = text_field_embedder
        self.pos_tag_embedding = pos_tag_embedding
        self.encoder = encoder
        input_dim = text_field_embedder.get_output_dim() + (pos_tag_embedding.get_output_dim() if pos_tag_embedding else 0)
        if encoder.get_input_dim() != input_dim:
            raise ConfigurationError(f"encoder input dim {encoder.get_input_dim()} != embeddings {input_dim}")
        hidden = encoder.get_output_dim()
        self.root = torch.nn.Parameter(torch.randn(hidden) * 0.1)
        elu = Activation.by_name("elu")()
        mlp = lambda dim: FeedForward(hidden, 1, dim, elu, dropout)  # noqa: E731
        self.arc_dependent, self.arc_head = mlp(arc_representation_dim), mlp(arc_representation_dim)
        self.label_dependent, self.label_head = mlp(label_representation_dim), mlp(label_representation_dim)
        # no term of the dependent alone in the arc scores: it would cancel in the softmax over heads
        self.arc_attention = Biaffine(arc_representation_dim, arc_representation_dim, bias_x=True, bias_y=False)
        self.num_labels = vocab.get_vocab_size("head_tags")
        self.label_attention = Biaffine(label_representation_dim, label_representation_dim, max(self.num_labels, 1))
        self.dropout = torch.nn.Dropout(dropout)
        self.use_mst_decoding_for_validation = use_mst_decoding_for_validation
        self.ignore_punctuation = ignore_punctuation
        pos_vocab = vocab.get_token_to_index_vocabulary("pos")
        self.punctuation_ids = sorted(i for tag, i in pos_vocab.items() if is_punctuation(tag, punctuation_tags))
        self._attachment = AttachmentScores()
        initializer(self)

    # -- scoring ---------------------------------------------------------------------------------
    def encode(self, tokens: TextFieldTensors, upos: Optional[torch.Tensor]):
        """``(encoded (B, n+1, d), mask (B, n+1))`` with the root at position 0."""
        mask: torch.Tensor = util.get_text_field_mask(tokens)
        embedded = self.text_field_embedder(tokens)
        if self.pos_tag_embedding is not None:
            if upos is None:
                raise ConfigurationError("this parser embeds PoS tags: the reader must give 'upos'")
            embedded = torch.cat([embedded, self.pos_tag_embedding(upos)], dim=-1)
        encoded = self.encoder(self.dropout(embedded), mask)
        root = self.root.view(1, 1, -1).expand(encoded.size(0), 1, -1)
        encoded = self.dropout(torch.cat([root, encoded], dim=1))
        mask = torch.cat([mask.new_ones(mask.size(0), 1), mask], dim=1)
        return encoded, mask

    def first_order_scores(self, encoded: torch.Tensor):
        """``(arc (B, n, n) [dependent, head], labels (B, n, n, R))``."""
        arc = self.arc_attention(self.arc_dependent(encoded), self.arc_head(encoded)).squeeze(-1)
        labels = self.label_attention(self.label_dependent(encoded), self.label_head(encoded))
        return arc, labels

    def head_log_probs(self, encoded: torch.Tensor, arc: torch.Tensor, mask: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """
        ``log P(head | dependent)`` ``(B, n, n)``; first order: independent softmaxes. Every score
        is multiplied by ``scale`` first (``1/T``: a teacher's global temperature).
        """
        return head_selection.head_log_probs(arc * scale, mask)

    def scores(self, tokens: TextFieldTensors, upos: Optional[torch.Tensor] = None):
        encoded, mask = self.encode(tokens, upos)
        arc, labels = self.first_order_scores(encoded)
        return encoded, mask, arc, labels, self.head_log_probs(encoded, arc, mask)

    @property
    def labels(self) -> List[str]:  # type: ignore[override]  # KDTeacher declares an attribute; this one is derived
        """As a teacher, its labels are its deprels (namespace ``head_tags``)."""
        return [self.vocab.get_token_from_index(i, "head_tags") for i in range(self.num_labels)]

    label_namespace = "head_tags"

    @property
    def reads_pos(self) -> bool:
        return self.pos_tag_embedding is not None

    def head_distribution(self, encoded: torch.Tensor, arc: torch.Tensor, mask: torch.Tensor) -> StructuredDistribution:
        """The distribution over each word's head ``(B, n, n)`` arcs, root at 0: first order, independent head selection."""
        return head_selection.HeadSelection(arc, mask)

    teacher_structure = ParseTeacher

    def teacher_distribution(self, tokens: TextFieldTensors, upos: Optional[torch.Tensor] = None, **fields) -> ParseTeacher:
        """
        Cases 1b and 2b of Wang et al. 2021: the parser's head distribution (exact for the first-order parser,
        mean field for the second-order one) and its deprel scores (see
        :class:`~allennlp_structkd.kd.teacher_distributions.ParseTeacher`: each word's head and deprel marginals,
        or its best tree for Top-1 pseudo labels).
        """
        encoded, mask = self.encode(tokens, upos)
        arc, labels = self.first_order_scores(encoded)
        return ParseTeacher(self.head_distribution(encoded, arc, mask), labels, mask)

    # -- the model -------------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        upos: Optional[torch.Tensor] = None,
        head_indices: Optional[torch.Tensor] = None,
        head_tags: Optional[torch.Tensor] = None,
        metadata: Optional[List[Dict[str, Any]]] = None,
        **other_fields: Any,
    ) -> Dict[str, torch.Tensor]:
        encoded, mask, arc, labels, log_heads = self.scores(tokens, upos)
        word_mask = head_selection.arc_mask(mask).any(2)  # words, not root or padding
        if self.training or not self.use_mst_decoding_for_validation:
            heads = log_heads.argmax(2).masked_fill(~word_mask, 0)
        else:
            heads = mst_heads(log_heads, mask)
        label_log_probs = labels.log_softmax(dim=3)
        predicted_labels = label_log_probs.gather(2, heads.view(*heads.shape, 1, 1).expand(-1, -1, 1, labels.size(3))).squeeze(2).argmax(-1)
        output: Dict[str, Any] = {
            "heads": heads[:, 1:], "head_labels": predicted_labels[:, 1:], "mask": mask[:, 1:],
            "head_probs": log_heads.exp(),
        }
        if metadata is not None:
            output["words"] = [m["words"] for m in metadata]
        if head_indices is not None:
            gold = torch.cat([head_indices.new_zeros(head_indices.size(0), 1), head_indices], dim=1).long()
            gold = gold.masked_fill(~word_mask, 0)
            arc_nll = -log_heads.gather(2, gold.unsqueeze(2)).squeeze(2)
            loss = torch.where(word_mask, arc_nll, torch.zeros_like(arc_nll)).sum(1)
            if head_tags is not None:
                gold_labels = torch.cat([head_tags.new_zeros(head_tags.size(0), 1), head_tags], dim=1).long()
                at_gold = label_log_probs.gather(2, gold.view(*gold.shape, 1, 1).expand(-1, -1, 1, labels.size(3))).squeeze(2)
                label_nll = -at_gold.gather(2, gold_labels.unsqueeze(2)).squeeze(2)
                loss = loss + torch.where(word_mask, label_nll, torch.zeros_like(label_nll)).sum(1)
            else:
                gold_labels = torch.zeros_like(gold)
                predicted_labels = torch.zeros_like(predicted_labels)
            output["loss"] = loss.mean()
            scored = word_mask.clone()
            if self.ignore_punctuation and upos is not None and self.punctuation_ids:
                pos = torch.cat([upos.new_zeros(upos.size(0), 1), upos], dim=1)
                scored &= ~torch.isin(pos, torch.tensor(self.punctuation_ids, device=pos.device))
            self._attachment(heads, predicted_labels, gold, gold_labels, scored)
        return output

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        lengths = output_dict["mask"].long().sum(1).tolist()
        heads = output_dict["heads"].tolist()
        labels = output_dict["head_labels"].tolist()
        output_dict["predicted_heads"] = [row[:n] for row, n in zip(heads, lengths)]
        output_dict["predicted_dependencies"] = [
            [self.vocab.get_token_from_index(t, "head_tags") if self.num_labels else "_" for t in row[:n]]
            for row, n in zip(labels, lengths)
        ]
        # the probability of each chosen head (first order: exact; second order: mean field)
        probs = output_dict.pop("head_probs")
        chosen = probs[:, 1:].gather(2, output_dict["heads"].unsqueeze(2)).squeeze(2).tolist()
        output_dict["head_confidences"] = [row[:n] for row, n in zip(chosen, lengths)]
        for key in ("heads", "head_labels", "mask"):
            output_dict.pop(key, None)
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return self._attachment.get_metric(reset)

    default_predictor = "structkd_parser"


@Model.register("structkd_biaffine_parser")
class BiaffineParser(DependencyParserBase):
    """The first-order biaffine parser (Dozat & Manning 2017); parameters as :class:`DependencyParserBase`."""
