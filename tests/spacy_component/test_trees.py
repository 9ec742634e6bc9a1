"""structkd-spacy's tree decoding is a copy of the library's (it serves without allennlp_structkd): both must give
the same heads and deprels, the repaired trees included, on random labels and label distributions."""
import random
import types

import torch

from allennlp_structkd.models.seq_label_parser import SequenceLabelingParser, split_label
from allennlp_structkd.structures import rel_pos
from structkd_spacy import trees

UPOS = ["NOUN", "VERB", "DET", "ADJ"]


def _labels(rng):
    labels = {f"{offset:+d}@{pos}@{rel}" for offset in (-2, -1, 1, 2) for pos in [*UPOS, "ROOT"] for rel in ("nsubj", "obj")}
    return sorted(labels)[: rng.randint(6, 40)] + ["-1@ROOT@root"]


def test_decoding_and_repair_agree_with_the_library_on_random_inputs():
    rng = random.Random(0)
    generator = torch.Generator().manual_seed(0)
    repaired = 0
    for _ in range(300):
        labels = _labels(rng)
        n = rng.randint(1, 7)
        pos_tags = [rng.choice(UPOS) for _ in range(n)]
        label_probs = torch.rand(n, len(labels), generator=generator).pow(3)
        label_probs = label_probs / label_probs.sum(1, keepdim=True)
        predicted = [rng.randrange(len(labels)) for _ in range(n)]
        parts = [split_label(labels[t]) for t in predicted]
        library_heads = rel_pos.decode([part for part, _ in parts], pos_tags)
        library_deprels = [deprel or "_" for _, deprel in parts]
        assert trees.decode([part for part, _ in parts], pos_tags) == library_heads
        assert trees.is_tree(library_heads) == rel_pos.is_tree(library_heads)
        if not rel_pos.is_tree(library_heads):
            parser = types.SimpleNamespace(_split=[split_label(label) for label in labels])
            library_heads, library_deprels = SequenceLabelingParser._repair(parser, label_probs, pos_tags, library_heads,
                                                                    library_deprels)
            repaired += 1
        heads, deprels = trees.parse(label_probs, predicted, labels, pos_tags)
        assert (heads, deprels) == (library_heads, library_deprels)
        assert trees.is_tree(heads)
    assert repaired >= 40  # the repair path is exercised, not only the trees the labels already make
