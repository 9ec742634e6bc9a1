"""
Writes training_configs/sample_data/tiny_bert/: a 2-layer BERT (hidden 32) with a wordpiece vocabulary
made from the characters and frequent word starts of the sample data and the reader tests' small files,
random weights (seed 0). It is the default
TRANSFORMER_MODEL of the transformer teacher configs, so that they train as written offline; set
TRANSFORMER_MODEL to a real encoder folder (e.g. multilingual-e5-small, see ../shared/README.md) for
real experiments.

    .venv/bin/python -m experiments.make_tiny_bert [OUTPUT_FOLDER]     # from the repository root
"""
import collections
import os
import sys

import torch
from transformers import BertConfig, BertModel, BertTokenizer

from allennlp_structkd.paths import REPO, SAMPLE_DATA

TEST_DATA = os.path.join(REPO, "tests", "fixtures", "data")
OUT = os.path.join(SAMPLE_DATA, "tiny_bert")
# the files the vocabulary is made from, in this order (the committed tiny_bert was made from these)
SOURCES = [(TEST_DATA, "ner_es.conll"), (TEST_DATA, "ner_nl.conll"), (TEST_DATA, "ptb.dp"),
           (SAMPLE_DATA, "toy_ner_es.dev"), (SAMPLE_DATA, "toy_ner_es.train"), (SAMPLE_DATA, "toy_ner_nl.dev"),
           (SAMPLE_DATA, "toy_ner_nl.train"), (SAMPLE_DATA, "toy_unlabeled_es.txt"), (SAMPLE_DATA, "toy_unlabeled_nl.txt"),
           (TEST_DATA, "ud_en.conllu"), (TEST_DATA, "unlabeled.txt")]


def main(out: str = OUT) -> None:
    counts: collections.Counter = collections.Counter()
    chars: set = set()
    for folder, name in SOURCES:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            for line in handle:
                for word in line.split()[:1] if not name.endswith(".txt") else line.split():
                    counts[word[:3]] += 1
                    chars.update(word)
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces += sorted(chars) + ["##" + c for c in sorted(chars)]
    pieces += [w for w, _ in counts.most_common(300) if w not in chars]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(dict.fromkeys(pieces)) + "\n")
    BertTokenizer(os.path.join(out, "vocab.txt"), do_lower_case=False).save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(dict.fromkeys(pieces)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else OUT)
