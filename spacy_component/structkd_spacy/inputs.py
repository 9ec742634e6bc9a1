"""Words to a student's index tensors, as its training indexed them (AllenNLP's ``single_id`` and
``characters`` indexers, the project's ``structkd_wordpieces``)."""
import os
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Tuple

import numpy

UNKNOWN = 1  # index 0 is padding, 1 the unknown token, in every vocabulary of an exported student
# The characters read of a word (its first ones), as the library's structkd_characters indexer reads them: a batch's
# character tensor is padded to its longest word, so one unbounded 40,000-character token would cost gigabytes.
# A student exported from an older archive (no max_characters in student.json) is read with the same bound.
MAX_WORD_CHARACTERS = 50


class Indexer:
    """Index tensors of sentences (lists of words) for the inputs of ``spec``."""

    def __init__(self, spec: Dict, vocabularies: Dict[str, List[str]], folder: str, where: Optional[str] = None) -> None:
        self.inputs = spec["inputs"]
        self.index = {item["name"]: {token: i for i, token in enumerate(vocabularies[item["name"]])} for item in self.inputs}
        self._pieces: Optional[Callable[[str, int], Tuple[str, ...]]] = None
        if any(item["type"] == "pieces" for item in self.inputs):
            try:
                from tokenizers import Tokenizer
            except ImportError as error:
                raise ImportError(f"the student in {folder} reads words as word pieces: it needs the `tokenizers` package "
                                  "(pip install tokenizers, or structkd-spacy[pieces])") from error
            try:
                tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
            except Exception as error:  # noqa: BLE001 (the tokenizers package raises a bare Exception for a bad file)
                from structkd_spacy.folder import StudentFormatError

                raise StudentFormatError(f"{os.path.join(where or folder, 'tokenizer.json')} is not a tokenizer the "
                                         f"tokenizers package reads ({str(error)[:200]}): export the student again") from None
            unknown = next(item.get("unknown_piece") for item in self.inputs if item["type"] == "pieces")

            @lru_cache(maxsize=200_000)
            def pieces(word: str, limit: int) -> Tuple[str, ...]:
                found = tokenizer.encode(word, add_special_tokens=False).tokens[:limit]
                return tuple(found) or (unknown,)

            self._pieces = pieces

    def arrays(self, sentences: List[List[str]]) -> Tuple[Dict[str, numpy.ndarray], numpy.ndarray]:
        """``({input name: ids (int64)}, mask (B, n) bool)``: words ``(B, n)``, characters or pieces ``(B, n, longest)``;
        one array per input per batch (built from padded lists)."""
        length = max((len(s) for s in sentences), default=0)
        mask = numpy.array([[True] * len(s) + [False] * (length - len(s)) for s in sentences], dtype=bool).reshape(
            len(sentences), length)
        arrays: Dict[str, numpy.ndarray] = {}
        for item in self.inputs:
            index = self.index[item["name"]]
            lower = item.get("lowercase")
            if item["type"] == "words":
                ids = [[index.get(w.lower() if lower else w, UNKNOWN) for w in s] + [0] * (length - len(s)) for s in sentences]
                arrays[item["name"]] = numpy.array(ids, dtype=numpy.int64).reshape(len(sentences), length)
                continue
            if item["type"] == "characters":
                bound = item.get("max_characters") or MAX_WORD_CHARACTERS
                parts = [[[index.get(c, UNKNOWN) for c in (w.lower() if lower else w)[:bound]] for w in s] for s in sentences]
                width = max([item.get("min_padding", 0)] + [len(p) for s in parts for p in s])
            else:
                limit = item.get("max_pieces", 16)
                assert self._pieces is not None  # made in __init__ for a "pieces" input
                parts = [[[index.get(p, UNKNOWN) for p in self._pieces(w, limit)] for w in s] for s in sentences]
                width = max([1] + [len(p) for s in parts for p in s])
            padded_word = [0] * width
            rows = [[p + [0] * (width - len(p)) for p in s] + [padded_word] * (length - len(s)) for s in parts]
            arrays[item["name"]] = numpy.array(rows, dtype=numpy.int64).reshape(len(sentences), length, width)
        return arrays, mask

    def tensors(self, sentences: List[List[str]]):
        """:meth:`arrays` as PyTorch tensors (the PyTorch network's input)."""
        import torch

        arrays, mask = self.arrays(sentences)
        return {name: torch.from_numpy(array) for name, array in arrays.items()}, torch.from_numpy(mask)
