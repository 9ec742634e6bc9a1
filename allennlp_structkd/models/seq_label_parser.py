from typing import Any, Dict, List, Optional, Sequence

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model

from allennlp_structkd.models.biaffine_parser import PUNCTUATION_TAGS
from allennlp_structkd.models.maxent_tagger import MaxEntTagger
from allennlp_structkd.structures import rel_pos
from allennlp_structkd.training.metrics import AttachmentScores


def split_label(label: str):
    """``"+1@NOUN@nsubj"`` -> ``("+1@NOUN", "nsubj")``; ``"+1@NN"`` (no deprel) -> ``("+1@NN", None)``."""
    head_part, _, deprel = label.rpartition("@")
    if rel_pos.parse_label(head_part) is None:  # no deprel part
        return label, None
    return head_part, deprel


@Model.register("structkd_seq_label_parser")
class SequenceLabelingParser(MaxEntTagger):
    """
    Dependency parsing as sequence labeling (Strzyz et al. 2019): a MaxEnt tagger over labels
    that join the relative-PoS head encoding and the deprel (``"+1@NOUN@nsubj"``, from the
    ``structkd_conllu`` reader with ``tag_column: "relpos"``), decoded back into heads by
    :func:`allennlp_structkd.structures.rel_pos.decode` with the PoS of ``metadata["upos"]``
    (gold PoS, as in the paper's setting) for UAS/LAS, punctuation left out unless
    ``ignore_punctuation`` is false. Trees are decoded at evaluation only (a loop over sentences).
    Other parameters as :class:`SequenceTagger`.
    """

    def __init__(self, vocab: Vocabulary, ignore_punctuation: bool = True,
                 punctuation_tags: Sequence[str] = PUNCTUATION_TAGS, **kwargs) -> None:
        super().__init__(vocab, **kwargs)
        self.ignore_punctuation = ignore_punctuation
        self.punctuation_tags = set(punctuation_tags)
        self._split = [split_label(label) for label in self.labels]
        self._deprels = vocab.get_token_to_index_vocabulary("head_tags")
        self._attachment = AttachmentScores()

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        tags: Optional[torch.LongTensor] = None,
        metadata: Optional[List[Dict[str, Any]]] = None,
        head_indices: Optional[torch.Tensor] = None,
        head_tags: Optional[torch.Tensor] = None,
        **fields: Any,
    ) -> Dict[str, torch.Tensor]:
        output = super().forward(tokens, tags=tags, metadata=metadata, **fields)
        if metadata is not None and not self.training:
            heads, deprels = self.decode_trees(output["tags"], output["mask"], metadata)
            output["predicted_heads"], output["predicted_dependencies"] = heads, deprels
            if head_indices is not None:
                self._score(heads, deprels, head_indices, head_tags, output["mask"], metadata)
        return output

    def decode_trees(self, tags: torch.Tensor, mask: torch.Tensor, metadata: List[Dict[str, Any]]):
        heads, deprels = [], []
        for row, n, meta in zip(tags.tolist(), mask.long().sum(1).tolist(), metadata):
            parts = [self._split[t] for t in row[:n]]
            heads.append(rel_pos.decode([p[0] for p in parts], meta["upos"]))
            deprels.append([p[1] or "_" for p in parts])
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
                    if pos in self.punctuation_tags:
                        scored[b, i] = False
        gold_labels = gold_tags.cpu() if gold_tags is not None else predicted_labels
        self._attachment(predicted, predicted_labels, gold_heads.cpu(), gold_labels, scored)

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        return super().make_output_human_readable(output_dict)

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)
        metrics.update(self._attachment.get_metric(reset))
        return metrics
