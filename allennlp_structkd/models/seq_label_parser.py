from typing import Any, Dict, List, Optional, Sequence

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.nn import util

from allennlp_structkd.models.maxent_tagger import MaxEntTagger
from allennlp_structkd.structures import rel_pos
from allennlp_structkd.training.metrics import AttachmentScores
from allennlp_structkd.training.metrics.attachment_scores import PUNCTUATION_TAGS, is_punctuation

# the labels' reading and the trees' repair live once, in the serving package (a served parser decodes the same trees)
from structkd_spacy.trees import parse as parse_tree
from structkd_spacy.trees import split_label as split_label


@Model.register("structkd_seq_label_parser")
class SequenceLabelingParser(MaxEntTagger):
    """
    Dependency parsing as sequence labeling (Strzyz et al. 2019): a MaxEnt tagger over labels
    that join the relative-PoS head encoding and the deprel (``"+1@NOUN@nsubj"``, from the
    ``structkd_conllu`` reader with ``tag_column: "relpos"``), decoded back into heads by
    :func:`allennlp_structkd.structures.rel_pos.decode` with the PoS of ``metadata["upos"]``
    (gold PoS, as in the paper's setting) for UAS/LAS, punctuation left out unless
    ``ignore_punctuation`` is false. Trees are decoded at evaluation only (a loop over sentences).
    Decoded heads that are no tree (a cycle, no root) are repaired: the maximum spanning tree over
    the model's own head distribution (:func:`rel_pos.head_distribution`), each word whose head
    changes taking its most probable deprel for the new head. What is scored is what is output: a tree.

    # Parameters

    vocab : `Vocabulary`, required
        Its label namespace holds the joined relative-PoS + deprel labels.
    ignore_punctuation : `bool`, optional (default = `True`)
        Leave punctuation out of UAS/LAS.
    punctuation_tags : `Sequence[str]`, optional (default = `PUNCTUATION_TAGS`)
        The PoS tags that make a word punctuation.
    **kwargs
        The parameters of :class:`SequenceTagger`.
    """

    # buffers (register_buffer), declared for the type checker
    _part_table: torch.Tensor
    _joint: torch.Tensor

    @property
    def needs_pos_to_predict(self) -> bool:
        return True  # its labels are heads relative to the PoS tags

    def __init__(self, vocab: Vocabulary, ignore_punctuation: bool = True,
                 punctuation_tags: Sequence[str] = PUNCTUATION_TAGS, **kwargs) -> None:
        super().__init__(vocab, **kwargs)
        self.ignore_punctuation = ignore_punctuation
        self.punctuation_tags = set(punctuation_tags)
        self._split = [split_label(label) for label in self.labels]
        self._deprels = vocab.get_token_to_index_vocabulary("head_tags")
        self._attachment = AttachmentScores()
        self._build_label_tables()

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        tags: Optional[torch.LongTensor] = None,
        metadata: Optional[List[Dict[str, Any]]] = None,
        head_indices: Optional[torch.Tensor] = None,
        head_tags: Optional[torch.Tensor] = None,
        upos: Optional[torch.Tensor] = None,
        teacher_targets: Optional[Dict[str, torch.Tensor]] = None,
        **fields: Any,
    ) -> Dict[str, torch.Tensor]:
        if teacher_targets is not None and "teacher_head_probs" in teacher_targets:
            if upos is None:
                raise ConfigurationError("mapping a parser teacher onto relative-PoS labels needs 'upos'")
            mask = util.get_text_field_mask(tokens)
            teacher_targets = {"teacher_unary": self.teacher_label_distribution(
                teacher_targets["teacher_head_probs"], teacher_targets.get("teacher_deprel_probs"), upos, mask)}
        output = super().forward(tokens, tags=tags, metadata=metadata, teacher_targets=teacher_targets, **fields)
        if metadata is not None and not self.training:
            heads, deprels = self.decode_trees(output["tags"], output["mask"], metadata, output.get("probs"))
            output["predicted_heads"], output["predicted_dependencies"] = heads, deprels
            if head_indices is not None:
                self._score(heads, deprels, head_indices, head_tags, output["mask"], metadata)
        return output

    def _build_label_tables(self) -> None:
        """
        Lookup tables from the label vocabulary, as buffers (they follow ``.to(device)``; not
        saved, since the vocabulary rebuilds them): ``_part_table`` maps (offset, PoS) to head
        parts, ``_joint`` (head part, deprel) to label ids (-1 where the vocabulary lacks the pair).
        """
        pos_vocab = dict(self.vocab.get_token_to_index_vocabulary("pos"))
        self._root_pos = len(pos_vocab)  # the root's PoS gets its own id after the vocabulary's
        pos_vocab[rel_pos.ROOT_POS] = self._root_pos
        head_parts = sorted({part for part, _ in self._split})
        parsed = [rel_pos.parse_label(p) for p in head_parts]
        max_offset = max((abs(label[0]) for label in parsed if label), default=1)
        part_index = {p: i for i, p in enumerate(head_parts)}
        part_table = rel_pos.label_table(part_index, pos_vocab, max_offset)
        joint = torch.full((len(head_parts), max(len(self._deprels), 1)), -1, dtype=torch.long)
        for label_id, (part, deprel) in enumerate(self._split):
            joint[part_index[part], self._deprels.get(deprel, 0) if deprel is not None else 0] = label_id
        self._num_parts = len(head_parts)
        self.register_buffer("_part_table", part_table, persistent=False)
        self.register_buffer("_joint", joint, persistent=False)

    def teacher_label_distribution(self, head_probs, deprel_probs, upos, mask) -> torch.Tensor:
        """
        A parser teacher's distribution mapped onto this model's labels (Wang et al. 2021, Eq. 5-6):
        ``P(o@P@r | m) = P_t(head part o@P | m) · P_t(r | m)``, where the head part's probability sums
        ``P_t(h | m)`` over the heads h that encode to it given the sentence's PoS
        (:func:`rel_pos.head_distribution_to_labels`). Heads or (head part, deprel) pairs that the
        label vocabulary lacks are dropped and each word's distribution renormalised, so it sums to one.
        ``head_probs`` ``(B, n, n+1)``, ``deprel_probs`` ``(B, n, R)`` in this model's ``head_tags`` order.
        """
        part_table, joint, root_id, num_parts = self._part_table, self._joint, self._root_pos, self._num_parts
        batch, n = mask.shape
        pos_ids = torch.cat([torch.full_like(upos[:, :1], root_id), upos.long()], dim=1)
        full_mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)
        heads = torch.cat([head_probs.new_zeros(batch, 1, n + 1), head_probs[:, :, : n + 1]], dim=1)
        parts = rel_pos.head_distribution_to_labels(heads, pos_ids, full_mask, part_table, num_parts)[:, 1:]
        if deprel_probs is None or joint.size(1) == 1:
            pair = parts.unsqueeze(3)
        else:
            pair = parts.unsqueeze(3) * deprel_probs[:, :, : joint.size(1)].unsqueeze(2)  # (B, n, parts, R)
        known = (joint >= 0).to(pair.dtype)
        result = pair.new_zeros(batch, n, self.num_labels)
        result.scatter_add_(2, joint.clamp(min=0).view(1, 1, -1).expand(batch, n, -1), (pair * known).flatten(2))
        total = result.sum(2, keepdim=True)
        result = torch.where(total > 0, result / total.clamp(min=1e-30), result)
        return result * mask.unsqueeze(2).to(result.dtype)

    def decode_trees(self, tags: torch.Tensor, mask: torch.Tensor, metadata: List[Dict[str, Any]],
                     probs: Optional[torch.Tensor] = None):
        """Heads and deprels of the predicted labels, per sentence; with the label distributions ``probs``
        ``(B, n, L)``, a sentence whose heads are no tree is repaired into the best tree over them
        (:func:`structkd_spacy.trees.parse`)."""
        heads, deprels = [], []
        label_probs = probs.detach().float().cpu().numpy() if probs is not None else None
        for b, (row, n, meta) in enumerate(zip(tags.tolist(), mask.long().sum(1).tolist(), metadata)):
            if label_probs is not None:
                sentence_heads, sentence_deprels = parse_tree(label_probs[b, :n], row[:n], self.labels, meta["upos"])
            else:
                parts = [self._split[t] for t in row[:n]]
                sentence_heads = rel_pos.decode([p[0] for p in parts], meta["upos"])
                sentence_deprels = [p[1] or "_" for p in parts]
            heads.append(sentence_heads)
            deprels.append(sentence_deprels)
        return heads, deprels

    def _score(self, heads, deprels, gold_heads, gold_tags, mask, metadata) -> None:
        batch, n = gold_heads.shape
        predicted = torch.zeros(batch, n, dtype=torch.long)
        predicted_labels = torch.full((batch, n), -1, dtype=torch.long)
        scored = mask.clone().cpu()
        for b, (row, rels, meta) in enumerate(zip(heads, deprels, metadata)):
            predicted[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            predicted_labels[b, : len(rels)] = torch.tensor([self._deprels.get(r, -1) for r in rels], dtype=torch.long)
            if self.ignore_punctuation:
                for i, pos in enumerate(meta["upos"]):
                    if is_punctuation(pos, self.punctuation_tags):
                        scored[b, i] = False
        gold_labels = gold_tags.cpu() if gold_tags is not None else predicted_labels
        self._attachment(predicted, predicted_labels, gold_heads.cpu(), gold_labels, scored)

    default_predictor = "structkd_parser"

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)
        metrics.update(self._attachment.get_metric(reset))
        return metrics
