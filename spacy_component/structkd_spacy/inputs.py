"""Words to a student's index tensors, as its training indexed them (AllenNLP's ``single_id`` and
``characters`` indexers, the project's ``structkd_wordpieces``)."""
import os
from functools import lru_cache
from typing import Dict, List, Tuple

import torch

UNKNOWN = 1  # index 0 is padding, 1 the unknown token, in every vocabulary of an exported student


class Indexer:
    """Index tensors of sentences (lists of words) for the inputs of ``spec``."""

    def __init__(self, spec: Dict, vocabularies: Dict[str, List[str]], folder: str) -> None:
        self.inputs = spec["inputs"]
        self.index = {item["name"]: {token: i for i, token in enumerate(vocabularies[item["name"]])} for item in self.inputs}
        self._pieces = None
        if any(item["type"] == "pieces" for item in self.inputs):
            try:
                from tokenizers import Tokenizer
            except ImportError as error:
                raise ImportError(f"the student in {folder} reads words as word pieces: it needs the `tokenizers` package "
                                  "(pip install tokenizers, or structkd-spacy[pieces])") from error
            tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
            unknown = next(item.get("unknown_piece") for item in self.inputs if item["type"] == "pieces")

            @lru_cache(maxsize=200_000)
            def pieces(word: str, limit: int) -> Tuple[str, ...]:
                found = tokenizer.encode(word, add_special_tokens=False).tokens[:limit]
                return tuple(found) or (unknown,)

            self._pieces = pieces

    def tensors(self, sentences: List[List[str]]) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """``({input name: ids}, mask (B, n))``: words ``(B, n)``, characters or pieces ``(B, n, longest)``."""
        batch, length = len(sentences), max((len(s) for s in sentences), default=0)
        mask = torch.zeros(batch, length, dtype=torch.bool)
        for b, sentence in enumerate(sentences):
            mask[b, : len(sentence)] = True
        tensors = {}
        for item in self.inputs:
            index = self.index[item["name"]]
            if item["type"] == "words":
                ids = torch.zeros(batch, length, dtype=torch.long)
                for b, sentence in enumerate(sentences):
                    words = [w.lower() for w in sentence] if item.get("lowercase") else sentence
                    ids[b, : len(sentence)] = torch.tensor([index.get(w, UNKNOWN) for w in words], dtype=torch.long)
            else:
                if item["type"] == "characters":
                    parts = [[list(w.lower() if item.get("lowercase") else w) for w in sentence] for sentence in sentences]
                    width = max([item.get("min_padding", 0)] + [len(p) for sentence in parts for p in sentence])
                else:
                    parts = [[list(self._pieces(w, item.get("max_pieces", 16))) for w in sentence] for sentence in sentences]
                    width = max([1] + [len(p) for sentence in parts for p in sentence])
                ids = torch.zeros(batch, length, width, dtype=torch.long)
                for b, sentence in enumerate(parts):
                    for i, word in enumerate(sentence):
                        if word:
                            ids[b, i, : len(word)] = torch.tensor([index.get(p, UNKNOWN) for p in word], dtype=torch.long)
            tensors[item["name"]] = ids
        return tensors, mask
