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


def _read_json(path: str, shown: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError as error:
        raise StudentFormatError(f"{shown} is not UTF-8 text (byte {error.start}): the file is damaged; export the "
                                 "student again") from None
    except json.JSONDecodeError as error:
        raise StudentFormatError(f"{shown} is not valid JSON ({error}): the file is damaged; export the student again") from None


def _positive(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


INPUT_SIZES = {"words": ("dim",), "characters": ("dim", "filters"), "pieces": ("dim",)}


def _check_spec(spec, shown: str) -> None:
    """The parts of ``student.json`` the model is built from, each checked (a clear error naming the key)."""
    labels = spec.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise StudentFormatError(f"{shown}: 'labels' must be a non-empty list of label names, got {labels!r:.80}")
    languages = spec.get("languages")
    if not isinstance(languages, list) or not languages or not all(isinstance(lang, str) for lang in languages):
        raise StudentFormatError(f"{shown}: 'languages' must be a non-empty list of language codes, got {languages!r:.80}")
    inputs = spec.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise StudentFormatError(f"{shown}: 'inputs' must be a non-empty list of the student's inputs, got {inputs!r:.80}")
    names = set()
    for k, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item.get("type") not in INPUT_SIZES:
            raise StudentFormatError(f"{shown}: input {k} must have a 'name' and a 'type' (one of {', '.join(INPUT_SIZES)}), "
                                     f"got {item!r:.80}")
        if item["name"] in names:
            raise StudentFormatError(f"{shown}: two inputs are called {item['name']!r}")
        names.add(item["name"])
        for key in INPUT_SIZES[item["type"]]:
            if not _positive(item.get(key)):
                raise StudentFormatError(f"{shown}: input {item['name']!r} needs a positive whole number {key!r}, got "
                                         f"{item.get(key)!r}")
        if item["type"] == "characters":
            sizes = item.get("ngram_sizes")
            if not isinstance(sizes, list) or not sizes or not all(_positive(size) for size in sizes):
                raise StudentFormatError(f"{shown}: input {item['name']!r} needs 'ngram_sizes', a list of positive whole "
                                         f"numbers, got {sizes!r}")
    encoder = spec.get("encoder")
    if encoder is not None and (not isinstance(encoder, dict) or not _positive(encoder.get("hidden_dim"))
                                or not _positive(encoder.get("layers")) or not isinstance(encoder.get("bidirectional"), bool)):
        raise StudentFormatError(f"{shown}: 'encoder' must be null or give 'hidden_dim' and 'layers' (positive whole numbers) "
                                 f"and 'bidirectional' (true or false), got {encoder!r:.120}")


def read_spec(folder: str, where: Optional[str] = None) -> Dict:
    """``student.json`` of a student folder, checked: a clear error naming the folder (``where``, when the files were
    put in ``folder`` from elsewhere) and what is missing or wrong."""
    where = where or folder
    if not os.path.isdir(folder):
        raise StudentFormatError(f"{where} is not a folder: give a student exported by `python -m allennlp_structkd.export "
                                 "ARCHIVE FOLDER`")
    missing = [name for name in FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise StudentFormatError(f"{where} is not an exported student: it lacks {', '.join(missing)}")
    shown = os.path.join(where, "student.json")
    spec = _read_json(os.path.join(folder, "student.json"), shown)
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise StudentFormatError(f"{shown} is not a {FORMAT} description (its 'format' is {spec.get('format') if isinstance(spec, dict) else None!r})")
    if spec.get("format_version") != FORMAT_VERSION:
        raise StudentFormatError(f"{shown} has format version {spec.get('format_version')!r}; this package reads version "
                                 f"{FORMAT_VERSION}: export the student again with the matching allennlp-structkd")
    if spec.get("kind") not in KINDS:
        raise StudentFormatError(f"{shown}: unknown kind {spec.get('kind')!r}; known: {', '.join(KINDS)}")
    _check_spec(spec, shown)
    if any(item.get("type") == "pieces" for item in spec["inputs"]) and not os.path.isfile(os.path.join(folder, "tokenizer.json")):
        raise StudentFormatError(f"{where} lacks tokenizer.json, which its word-piece input needs")
    return spec


def read_vocabularies(folder: str, spec: Dict, where: Optional[str] = None) -> Dict[str, List[str]]:
    """``vocabulary.json``, checked against the inputs of ``spec``."""
    shown = os.path.join(where or folder, "vocabulary.json")
    vocabularies = _read_json(os.path.join(folder, "vocabulary.json"), shown)
    if not isinstance(vocabularies, dict):
        raise StudentFormatError(f"{shown} must map each input's name to its tokens, got a {type(vocabularies).__name__}")
    for item in spec["inputs"]:
        tokens = vocabularies.get(item["name"])
        if not isinstance(tokens, list) or len(tokens) < 2 or not all(isinstance(token, str) for token in tokens):
            raise StudentFormatError(f"{shown}: the vocabulary of input {item['name']!r} must be a list of tokens (padding "
                                     f"and unknown first), got {str(tokens)[:80]}")
    return vocabularies


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


def _read_weights(path: str, shown: str) -> Dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (truncated zip, not a torch file, a refused pickle: all a damaged file)
        raise StudentFormatError(f"{shown} cannot be read as the student's weights ({type(error).__name__}: "
                                 f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'}): export the student "
                                 "again") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise StudentFormatError(f"{shown} is not a state dict (names to tensors): export the student again")
    return state


def load(folder: str, spec: Optional[Dict] = None, where: Optional[str] = None):
    """``(spec, vocabularies, Student with its weights, in eval mode)`` of a student folder; errors name ``where`` (the
    folder the files came from, when they were copied to ``folder``), the file and what is wrong."""
    where = where or folder
    spec = spec or read_spec(folder, where)
    vocabularies = read_vocabularies(folder, spec, where)
    model = Student(spec, vocabularies)
    shown = os.path.join(where, "weights.pt")
    state = _read_weights(os.path.join(folder, "weights.pt"), shown)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise StudentFormatError(f"{shown} does not fit student.json: weights missing {missing[:5]}, unexpected "
                                 f"{unexpected[:5]}")
    for name, value in expected.items():
        if tuple(state[name].shape) != tuple(value.shape):
            raise StudentFormatError(
                f"{shown}: {name} has shape {tuple(state[name].shape)}, but student.json and vocabulary.json make it "
                f"{tuple(value.shape)} ({len(spec['labels'])} labels; vocabulary sizes "
                f"{ {item['name']: len(vocabularies[item['name']]) for item in spec['inputs']} }): the files are not "
                "of one export")
    for name, tensor in state.items():
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise StudentFormatError(f"{shown}: {name} holds {count} NaN or infinite values: this student would serve wrong "
                                     "labels silently; export it from a checkpoint whose weights are finite")
    model.load_state_dict(state)
    return spec, vocabularies, model.eval()
