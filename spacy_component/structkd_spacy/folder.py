"""
An exported student's folder: the format ``python -m allennlp_structkd.export`` writes, read and checked
here without PyTorch (the network itself is :mod:`structkd_spacy.student` for PyTorch, or
``network.onnx`` for ONNX Runtime).

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
  package, the one extra a word-piece student needs);
* ``network.onnx`` (written by ``export --onnx``): the same network in ONNX, index arrays and word mask
  in, label scores out (and a CRF's transitions, start and end scores), served by ONNX Runtime with no
  PyTorch.
"""
import json
import os
from typing import Dict, List, Optional

FORMAT, FORMAT_VERSION = "structkd-student", 1
FILES = ("student.json", "vocabulary.json", "weights.pt")  # every export has them
OPTIONAL_FILES = ("tokenizer.json", "network.onnx")  # a word-piece input's tokenizer; the ONNX network
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


