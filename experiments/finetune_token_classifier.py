"""
Fine-tune an encoder folder as a token classifier and save a standard Hugging Face folder: what a
user would have downloaded as a fine-tuned NER or PoS model, made here offline (experiments only).

    python -m experiments.finetune_token_classifier --encoder ~/.cache/structkd/multilingual-e5-small \\
        --train data/esp.train --dev data/esp.testa --format conll --output runs/hf_teacher_es [--epochs 3]

``--format conll`` reads CoNLL column files (word first, tag last; IOB2 tags, kept as they are:
the saved labels are the data's own), ``conllu`` reads CoNLL-U's UPOS column. Each word is labeled
at its first word piece (the others are ignored, -100), as transformers' token-classification
examples do; a training sentence longer than ``--max-length`` pieces is cut for training only.
The model of the epoch with the best dev score (span F1, or accuracy) is saved with its fast
tokenizer (``save_pretrained``), with ``training.json`` beside it (arguments, seed, dev scores per
epoch). A plain PyTorch loop (AdamW, linear decay, warm-up 10%), seeded; ``--train-layers K`` keeps
all but the top K encoder layers frozen (and the embeddings), which is what makes fine-tuning fit
2 CPU cores; ``--head-lr`` gives the new classification layer its own learning rate. The output
folder must be new, or one this tool wrote (replaced whole).
"""
import argparse
import json
import math
import os
import random
import secrets
import shutil
import time
from typing import Dict, List, Optional, Sequence, Tuple, cast

import numpy as np
import torch

Sentence = Tuple[List[str], List[str]]


def read_sentences(path: str, data_format: str, encoding: str = "utf-8") -> List[Sentence]:
    """``(words, labels)`` of each sentence, read by the project's readers (errors name file and line)."""
    from allennlp.common import Params
    from allennlp.data import DatasetReader
    from allennlp.data.fields import MetadataField, SequenceLabelField

    import allennlp_structkd  # noqa: F401  (the readers)

    params: Dict[str, object]
    if data_format == "conll":
        params = {"type": "structkd_conll_ner", "tag_scheme": "IOB2", "output_scheme": "BIO", "encoding": encoding}
    elif data_format == "conllu":
        params = {"type": "structkd_conllu", "read_heads": False, "tag_column": "upos", "encoding": encoding}
    else:
        raise SystemExit(f"--format must be conll or conllu, got {data_format!r}")
    reader = DatasetReader.from_params(Params(params))
    found = []
    for instance in reader.read(path):
        words = list(cast(MetadataField, instance["metadata"]).metadata["words"])
        found.append((words, [str(label) for label in cast(SequenceLabelField, instance["tags"]).labels]))
    return found


def label_list(sentences: Sequence[Sentence]) -> List[str]:
    """The labels, ``O`` first (span tags), the rest sorted: the classifier's ids."""
    labels = sorted({label for _, tags in sentences for label in tags})
    return (["O"] + [label for label in labels if label != "O"]) if "O" in labels else labels


def encode(tokenizer, words: List[str], labels: Optional[List[int]], max_length: int):
    """Input ids and per-piece labels (a word's first piece, -100 elsewhere), cut at ``max_length`` pieces."""
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    previous, piece_labels, firsts = None, [], []
    for position, word in enumerate(encoded.word_ids()):
        first = word is not None and word != previous
        piece_labels.append(labels[word] if first and labels is not None else -100)
        if first:
            firsts.append(position)
        previous = word
    return encoded["input_ids"], piece_labels, firsts


def batches(items: List, size: int, generator: random.Random, shuffle: bool):
    order = list(range(len(items)))
    if shuffle:
        generator.shuffle(order)
    for start in range(0, len(order), size):
        yield [items[i] for i in order[start : start + size]]


def pad(rows: List[List[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def evaluate(model, tokenizer, sentences: Sequence[Sentence], labels: List[str], max_length: int,
             batch_size: int) -> Dict[str, float]:
    """Dev scores of the model's first-piece predictions: span F1 (seqeval, conlleval's rules) and accuracy."""
    from seqeval.metrics import f1_score

    model.eval()
    pad_id = tokenizer.pad_token_id or 0
    encoded_all = [encode(tokenizer, words, None, max_length) for words, _ in sentences]
    # batches of similar length (little padding), the predictions put back in the data's order
    order = sorted(range(len(sentences)), key=lambda i: len(encoded_all[i][0]))
    guesses: Dict[int, List[str]] = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encoded = [encoded_all[i] for i in chunk]
            ids = pad([e[0] for e in encoded], pad_id)
            attention = pad([[1] * len(e[0]) for e in encoded], 0)
            logits = model(input_ids=ids, attention_mask=attention).logits
            for row, (index, (_, _, firsts)) in enumerate(zip(chunk, encoded)):
                best = logits[row, firsts].argmax(-1).tolist()
                # words past a cut: O
                guesses[index] = [labels[i] for i in best] + ["O"] * (len(sentences[index][0]) - len(best))
    predicted = [guesses[i] for i in range(len(sentences))]
    gold = [tags for _, tags in sentences]
    correct = sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs))
    scores = {"accuracy": correct / max(1, sum(len(g) for g in gold))}
    if any(label[:2] in ("B-", "I-") for label in labels):
        scores["f1"] = float(f1_score(gold, predicted))
    return scores


def check_output(folder: str) -> None:
    """The output may be new, or a folder this tool wrote (it holds training.json of this tool): never another."""
    if not os.path.lexists(folder):
        return
    record = os.path.join(folder, "training.json")
    try:
        with open(record, encoding="utf-8") as handle:
            written_here = json.load(handle).get("tool") == "experiments.finetune_token_classifier"
    except (OSError, ValueError):
        written_here = False
    if not written_here:
        raise SystemExit(f"{folder} exists and is not a folder this tool wrote: give a new --output (nothing was changed)")


def finetune(encoder: str, train: Sequence[Sentence], dev: Sequence[Sentence], output: str, epochs: int = 3,
             lr: float = 5e-5, batch_size: int = 16, max_length: int = 128, seed: int = 13,
             train_layers: Optional[int] = None, progress: bool = True, head_lr: Optional[float] = None) -> Dict:
    """Fine-tune ``encoder`` on ``train`` (selecting the epoch on ``dev``), save it to ``output``; returns the record."""
    from tqdm import tqdm
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    check_output(output)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    labels = label_list(train)
    ids = {label: i for i, label in enumerate(labels)}
    unknown = sorted({tag for _, tags in dev for tag in tags} - set(ids))
    if unknown:
        raise SystemExit(f"the dev data has labels the training data lacks: {unknown}")
    tokenizer = AutoTokenizer.from_pretrained(encoder, use_fast=True)
    if not getattr(tokenizer, "is_fast", False):
        raise SystemExit(f"{encoder}: a fast tokenizer is needed (word alignment)")
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ids)
    if train_layers is not None:
        base = getattr(model, model.base_model_prefix)
        layers = list(base.encoder.layer)
        for parameter in base.parameters():
            parameter.requires_grad = False
        for layer in layers[len(layers) - train_layers:] if train_layers > 0 else []:
            for parameter in layer.parameters():
                parameter.requires_grad = True
    encoded = [encode(tokenizer, words, [ids[t] for t in tags], max_length) for words, tags in train]
    trainable = [p for p in model.parameters() if p.requires_grad]
    # the new classification layer may learn faster than the pretrained encoder: an encoder whose outputs are small
    # (multilingual-e5-small's are about 5 in norm, being made for cosine similarity) gives a head at lr 5e-5 near-zero
    # logits for hundreds of steps
    base_ids = {id(p) for p in getattr(model, model.base_model_prefix).parameters()}
    head = [p for p in trainable if id(p) not in base_ids]
    encoder_part = [p for p in trainable if id(p) in base_ids]
    groups = [{"params": encoder_part, "lr": lr}, {"params": head, "lr": head_lr or lr}]
    optimizer = torch.optim.AdamW([group for group in groups if group["params"]])
    steps = epochs * math.ceil(len(encoded) / batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    generator = random.Random(seed)
    history, best_score, best_state = [], -1.0, None
    pad_id = tokenizer.pad_token_id or 0
    started = time.time()
    for epoch in range(epochs):
        model.train()
        bar = tqdm(total=len(encoded), desc=f"epoch {epoch + 1}/{epochs}", unit=" sentences", disable=not progress)
        for batch in batches(encoded, batch_size, generator, shuffle=True):
            input_ids, piece_labels = pad([b[0] for b in batch], pad_id), pad([b[1] for b in batch], -100)
            attention = pad([[1] * len(b[0]) for b in batch], 0)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=piece_labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            bar.update(len(batch))
            bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        scores = evaluate(model, tokenizer, dev, labels, max_length, batch_size) if dev else {}
        score = scores.get("f1", scores.get("accuracy", float(epoch)))
        history.append({"epoch": epoch + 1, **scores})
        if score > best_score:
            best_score, best_state = score, {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert best_state is not None  # epochs >= 1
    model.load_state_dict(best_state)
    record = {"tool": "experiments.finetune_token_classifier", "encoder": encoder, "labels": labels, "seed": seed,
              "epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": batch_size, "max_length": max_length, "train_layers": train_layers,
              "train_sentences": len(train), "dev_sentences": len(dev), "history": history,
              "best_epoch": max(history, key=lambda h: h.get("f1", h.get("accuracy", 0.0)))["epoch"] if dev else epochs,
              "seconds": round(time.time() - started, 1)}
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".finetune-{secrets.token_hex(6)}")
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        with open(os.path.join(staging, "training.json"), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
        earlier = None
        if os.path.lexists(output):  # an earlier output of this tool (checked above), holding nothing else
            written = set(os.listdir(staging)) | {"pytorch_model.bin", "model.safetensors"}
            others = sorted(set(os.listdir(output)) - written)
            if others:
                raise SystemExit(f"{output} holds files this tool did not write ({', '.join(others[:5])}): give a new "
                                 "--output (nothing was changed)")
            earlier = staging + ".earlier"
            os.rename(output, earlier)
        os.rename(staging, output)
        if earlier is not None:
            shutil.rmtree(earlier)  # only names this tool writes (checked above)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="a local Hugging Face encoder folder")
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", default=None)
    parser.add_argument("--format", choices=("conll", "conllu"), required=True)
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=None, help="the classification layer's learning rate (default: --lr)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--train-layers", type=int, default=None, help="fine-tune only the top K layers (and the classifier)")
    parser.add_argument("--limit", type=int, default=None, help="the first N training sentences only")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.max_length < 8:
        parser.error("--epochs and --batch-size must be positive, --max-length at least 8")
    train = read_sentences(args.train, args.format, args.encoding)[: args.limit]
    dev = read_sentences(args.dev, args.format, args.encoding) if args.dev else []
    record = finetune(args.encoder, train, dev, args.output, args.epochs, args.lr, args.batch_size, args.max_length,
                      args.seed, args.train_layers, head_lr=args.head_lr)
    print(json.dumps({k: record[k] for k in ("best_epoch", "history", "seconds")}))
    print(f"saved a token classifier with {len(record['labels'])} labels to {args.output}")


if __name__ == "__main__":
    main()
