"""
An exported student's network in plain PyTorch (the folder's format: :mod:`structkd_spacy.folder`).
"""
import os
from typing import Dict, List, Optional, Sequence

import torch

from structkd_spacy.folder import (  # noqa: F401
    FILES,
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    StudentFormatError,
    read_spec,
    read_vocabularies,
)


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
