"""
An exported student: its folder (the format ``python -m allennlp_structkd.export`` writes) and its
model in plain PyTorch.

A student folder holds:

* ``student.json``: ``format`` ("structkd-student"), ``format_version``, ``kind`` (``crf_tagger``,
  ``maxent_tagger`` or ``seq_label_parser``), ``labels`` (in the model's order), ``label_encoding``
  (``BIOES``, ``BIO``, ``IOB1`` or null), ``languages`` (those it was trained on), ``inputs`` (the
  word representations, concatenated in this order: ``words``, ``characters`` or ``pieces``, each
  with its vocabulary and sizes), ``encoder`` (a BiLSTM's sizes, or null), and for a parser the PoS
  tags it knows;
* ``vocabulary.json``: each input's vocabulary, ``{name: [token of index 0, 1, ...]}`` (index 0 is
  padding, index 1 the unknown token);
* ``weights.pt``: the parameters (``torch.save`` of a state dict);
* ``tokenizer.json``: for a ``pieces`` input, its encoder's tokenizer (read with the ``tokenizers``
  package, the one extra a word-piece student needs).
"""
import json
import os
from typing import Dict, List, Optional, Sequence

import torch

FORMAT, FORMAT_VERSION = "structkd-student", 1
FILES = ("student.json", "vocabulary.json", "weights.pt")
KINDS = ("crf_tagger", "maxent_tagger", "seq_label_parser")


class StudentFormatError(ValueError):
    """A folder that is not an exported student of a version this package reads; the message names the path and file."""


def read_spec(folder: str) -> Dict:
    """``student.json`` of a student folder, checked: a clear error naming the folder and what is missing or wrong."""
    if not os.path.isdir(folder):
        raise StudentFormatError(f"{folder} is not a folder: give a student exported by `python -m allennlp_structkd.export "
                                 "ARCHIVE FOLDER`")
    missing = [name for name in FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise StudentFormatError(f"{folder} is not an exported student: it lacks {', '.join(missing)}")
    path = os.path.join(folder, "student.json")
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except json.JSONDecodeError as error:
        raise StudentFormatError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise StudentFormatError(f"{path} is not a {FORMAT} description (its 'format' is {spec.get('format') if isinstance(spec, dict) else None!r})")
    if spec.get("format_version") != FORMAT_VERSION:
        raise StudentFormatError(f"{path} has format version {spec.get('format_version')!r}; this package reads version "
                                 f"{FORMAT_VERSION}: export the student again with the matching allennlp-structkd")
    if spec.get("kind") not in KINDS:
        raise StudentFormatError(f"{path}: unknown kind {spec.get('kind')!r}; known: {', '.join(KINDS)}")
    for key in ("labels", "languages", "inputs"):
        if not spec.get(key):
            raise StudentFormatError(f"{path} lacks {key!r}")
    if any(item.get("type") == "pieces" for item in spec["inputs"]) and not os.path.isfile(os.path.join(folder, "tokenizer.json")):
        raise StudentFormatError(f"{folder} lacks tokenizer.json, which its word-piece input needs")
    return spec


class CharacterCnn(torch.nn.Module):
    """A word's characters embedded, convolved (one layer per n-gram size, ReLU) and max-pooled: AllenNLP's
    ``character_encoding`` with a ``cnn`` encoder, including its rule that a word shorter than a filter gets 0
    from that filter."""

    def __init__(self, vocabulary_size: int, dim: int, filters: int, ngram_sizes: Sequence[int]) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary_size, dim)
        self.convolutions = torch.nn.ModuleList(torch.nn.Conv1d(dim, filters, size) for size in ngram_sizes)

    def forward(self, characters: torch.Tensor) -> torch.Tensor:
        """``characters`` ``(B, n, C)`` ids (0 padding) → ``(B, n, filters · len(ngram_sizes))``."""
        batch, words, length = characters.shape
        flat = characters.view(batch * words, length)
        mask = flat != 0
        embedded = (self.embedding(flat) * mask.unsqueeze(2)).transpose(1, 2)  # (B·n, dim, C)
        lengths = mask.sum(1, keepdim=True)
        pooled = []
        for convolution in self.convolutions:
            assert isinstance(convolution, torch.nn.Conv1d)
            size = convolution.kernel_size[0]
            activations = torch.relu(convolution(embedded))  # (B·n, filters, C - size + 1)
            windows = torch.arange(activations.size(2), device=flat.device).unsqueeze(0)
            valid = (windows < lengths - size + 1).unsqueeze(1)  # windows inside the word
            best = activations.masked_fill(~valid, float("-inf")).max(dim=2).values
            pooled.append(torch.where(torch.isinf(best), torch.zeros_like(best), best))
        return torch.cat(pooled, dim=1).view(batch, words, -1)


class PieceAverage(torch.nn.Module):
    """A word as the average of its word pieces' vectors (padding pieces 0 left out)."""

    def __init__(self, vocabulary_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary_size, dim)

    def forward(self, pieces: torch.Tensor) -> torch.Tensor:
        mask = (pieces != 0).unsqueeze(-1)
        return (self.embedding(pieces) * mask).sum(2) / mask.sum(2).clamp(min=1)


class Student(torch.nn.Module):
    """
    The exported student's network: its inputs' vectors concatenated, a BiLSTM (if any), a linear
    layer to label scores; for a CRF, its transitions (forbidden ones already in them) and start/end.
    """

    def __init__(self, spec: Dict, vocabularies: Dict[str, List[str]]) -> None:
        super().__init__()
        self.spec = spec
        self.inputs = torch.nn.ModuleDict()
        width = 0
        for item in spec["inputs"]:
            size = len(vocabularies[item["name"]])
            if item["type"] == "words":
                self.inputs[item["name"]] = torch.nn.Embedding(size, item["dim"])
                width += item["dim"]
            elif item["type"] == "characters":
                self.inputs[item["name"]] = CharacterCnn(size, item["dim"], item["filters"], item["ngram_sizes"])
                width += item["filters"] * len(item["ngram_sizes"])
            elif item["type"] == "pieces":
                self.inputs[item["name"]] = PieceAverage(size, item["dim"])
                width += item["dim"]
            else:
                raise StudentFormatError(f"unknown input type {item['type']!r}")
        encoder = spec.get("encoder")
        self.encoder = None
        if encoder is not None:
            self.encoder = torch.nn.LSTM(width, encoder["hidden_dim"], num_layers=encoder["layers"],
                                         bidirectional=encoder["bidirectional"], batch_first=True)
            width = encoder["hidden_dim"] * (2 if encoder["bidirectional"] else 1)
        labels = len(spec["labels"])
        self.projection = torch.nn.Linear(width, labels)
        if spec["kind"] == "crf_tagger":
            self.transitions = torch.nn.Parameter(torch.zeros(labels, labels))
            self.start = torch.nn.Parameter(torch.zeros(labels))
            self.end = torch.nn.Parameter(torch.zeros(labels))

    def forward(self, tensors: Dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Label scores ``(B, n, L)`` of a batch of index tensors (one per input) and its word mask ``(B, n)``."""
        vectors = torch.cat([self.inputs[item["name"]](tensors[item["name"]]) for item in self.spec["inputs"]], dim=-1)
        if self.encoder is not None:
            lengths = mask.sum(1)
            if lengths.max() > 0:
                packed = torch.nn.utils.rnn.pack_padded_sequence(vectors, lengths.clamp(min=1).cpu(), batch_first=True,
                                                                 enforce_sorted=False)
                encoded, _ = self.encoder(packed)
                vectors, _ = torch.nn.utils.rnn.pad_packed_sequence(encoded, batch_first=True, total_length=mask.size(1))
            else:
                vectors = vectors.new_zeros(*mask.shape, self.projection.in_features)
            vectors = vectors * mask.unsqueeze(2)
        return self.projection(vectors)


def load(folder: str, spec: Optional[Dict] = None):
    """``(spec, vocabularies, Student with its weights, in eval mode)`` of a student folder."""
    spec = spec or read_spec(folder)
    with open(os.path.join(folder, "vocabulary.json"), encoding="utf-8") as handle:
        vocabularies = json.load(handle)
    model = Student(spec, vocabularies)
    state = torch.load(os.path.join(folder, "weights.pt"), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise StudentFormatError(f"{folder}/weights.pt does not fit student.json: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return spec, vocabularies, model.eval()
