"""The sequence-labeling parser's trees, from one copy (structkd_spacy.trees, which the library's parser and its
structures.rel_pos decode with):
labels that make a tree are kept; labels that make none are repaired into the maximum spanning tree of their head
distribution, checked against every tree of small sentences."""
import itertools
import math
import random

import numpy
import torch

from allennlp_structkd.models import seq_label_parser
from structkd_spacy import trees

UPOS = ["NOUN", "VERB", "DET", "ADJ"]


def _labels(rng):
    labels = {f"{offset:+d}@{pos}@{rel}" for offset in (-2, -1, 1, 2) for pos in [*UPOS, "ROOT"] for rel in ("nsubj", "obj")}
    return sorted(labels)[: rng.randint(6, 40)] + ["-1@ROOT@root"]


def _best_tree_by_enumeration(label_probs, parts, pos_tags):
    """The tree over every head assignment that maximises what Chu-Liu-Edmonds maximises here: the sum over words of
    the (row-normalised, self-loops excluded) probability of its head."""
    n = len(pos_tags)
    decoded = {part: trees.decode([part] * n, pos_tags) for part in set(parts)}
    distribution = numpy.zeros((n, n + 1))
    for i in range(n):
        for label, part in enumerate(parts):
            distribution[i, decoded[part][i]] += label_probs[i, label]
    logits = numpy.log(numpy.maximum(distribution, 1e-12))
    logits[numpy.arange(n), numpy.arange(1, n + 1)] = -1e4  # no word is its own head
    energy = numpy.exp(logits - logits.max(1, keepdims=True))
    energy /= energy.sum(1, keepdims=True)
    def score(heads):
        return sum(energy[i, h] for i, h in enumerate(heads))

    best, best_score = None, -math.inf
    for heads in itertools.product(range(n + 1), repeat=n):
        if any(h == i + 1 for i, h in enumerate(heads)) or not trees.is_tree(list(heads)):
            continue
        if score(heads) > best_score:
            best, best_score = list(heads), score(heads)
    return best, score, decoded


def test_labels_that_make_no_tree_are_repaired_into_the_best_tree_of_their_distribution():
    rng = random.Random(0)
    generator = torch.Generator().manual_seed(0)
    repaired = 0
    for _ in range(400):
        labels = _labels(rng)
        n = rng.randint(2, 5)
        pos_tags = [rng.choice(UPOS) for _ in range(n)]
        label_probs = torch.rand(n, len(labels), generator=generator).pow(3)
        label_probs = (label_probs / label_probs.sum(1, keepdim=True)).numpy()
        predicted = [rng.randrange(len(labels)) for _ in range(n)]
        split = [trees.split_label(label) for label in labels]
        parts = [part for part, _ in split]
        as_labeled = trees.decode([parts[t] for t in predicted], pos_tags)
        heads, deprels = trees.parse(label_probs, predicted, labels, pos_tags)
        assert trees.is_tree(heads)
        if trees.is_tree(as_labeled):
            assert heads == as_labeled and deprels == [split[t][1] or "_" for t in predicted]
            continue
        repaired += 1
        best, score, decoded = _best_tree_by_enumeration(label_probs, parts, pos_tags)
        # the best tree (another one only where two score the same to rounding, which float32 may order either way)
        assert heads == best or score(heads) >= score(best) - 1e-5
        for i, (old, new) in enumerate(zip(as_labeled, heads)):
            fits = [label for label, part in enumerate(parts) if decoded[part][i] == new]
            if old != new and fits:  # a moved word takes its most probable deprel among labels for its new head
                assert deprels[i] == (split[max(fits, key=lambda label: label_probs[i, label])][1] or "_")
            else:
                assert deprels[i] == (split[predicted[i]][1] or "_")
    assert repaired >= 40  # the repair path is exercised, not only the trees the labels already make


def test_the_library_decodes_with_the_serving_packages_copy():
    assert seq_label_parser.split_label is trees.split_label and seq_label_parser.parse_tree is trees.parse
