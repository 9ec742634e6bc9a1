"""
``structkd_frozen_encoder``: the word features of a frozen pretrained encoder (several of its
layers, wordpieces pooled to words), computed once per sentence and cached on disk.

A strong teacher that a CPU can afford: the encoder never trains, so its features are computed
once (the first epoch, or :func:`precompute`) and every later epoch, run and teacher reads them
back. A :class:`~allennlp_structkd.modules.layer_mix_embedder.LayerMixEmbedder` mixes the layers.
"""
import hashlib
import json
import logging
import os
from typing import Any, Dict, Iterable, List, Optional, cast

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Token, Vocabulary
from allennlp.data.token_indexers import TokenIndexer
from allennlp.data.token_indexers.token_indexer import IndexedTokenList

from allennlp_structkd.kd.cache import TeacherCache, file_sha256
from allennlp_structkd.kd.protocol import PrecomputingIndexer
from allennlp_structkd.keys import sequence_key

logger = logging.getLogger(__name__)


def default_feature_cache() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "allennlp_structkd", "encoder_features")


@TokenIndexer.register("structkd_frozen_encoder")
class FrozenEncoderIndexer(TokenIndexer, PrecomputingIndexer):
    """
    # Parameters

    model_name : `str`
        A local Hugging Face encoder folder (``AutoModel``/``AutoTokenizer``); configs read it from
        ``FROZEN_ENCODER``.
    layers : `List[int]`, optional (default = `[-3, -2, -1]`)
        Which hidden states to keep: 0 the embeddings, 1..L the layers, negative from the top.
    pooling : `str`, optional (default = `"avg"`)
        A word's wordpieces pooled by ``avg`` or ``first``.
    cache_directory : `str`, optional
        Where features are cached (default ``~/.cache/allennlp_structkd/encoder_features``): one
        SQLite file per encoder (the SHA-256 of its files), layers and pooling; rows keyed by the
        sentence's words. An entry whose shape does not match its sentence is recomputed.
    max_pieces : `int`, optional (default = `510`)
        Longer sentences are encoded in windows of whole words of at most this many wordpieces.
    """

    def __init__(self, model_name: str, layers: Optional[List[int]] = None, pooling: str = "avg",
                 cache_directory: Optional[str] = None, max_pieces: int = 510, token_min_padding_length: int = 0) -> None:
        super().__init__(token_min_padding_length)
        if not model_name or not os.path.isdir(model_name):
            raise ConfigurationError(
                f"the frozen encoder folder {model_name!r} does not exist: set FROZEN_ENCODER (what the encoder_* "
                "configs read; the indexer's model_name) to a local Hugging Face model folder, e.g. the "
                "multilingual-e5-small that `make encoders` builds")
        if pooling not in ("avg", "first"):
            raise ConfigurationError(f"pooling must be 'avg' or 'first', got {pooling!r}")
        self.model_name = model_name
        self.layers = list(layers) if layers is not None else [-3, -2, -1]
        self.pooling = pooling
        self.max_pieces = max_pieces
        self.cache_directory = cache_directory or default_feature_cache()
        self._encoder: Any = None  # a transformers model and its tokenizer, loaded on first use
        self._tokenizer: Any = None
        self._cache: Optional[TeacherCache] = None
        # features fetched by prefetch() for the batch about to be indexed (indexing goes one sentence at a time)
        self._prefetched: Dict[str, np.ndarray] = {}

    # -- the encoder, loaded on first use ------------------------------------------------------------
    def _load(self) -> None:
        if self._encoder is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self._encoder = AutoModel.from_pretrained(self.model_name).eval()
        num_layers = self._encoder.config.num_hidden_layers
        for layer in self.layers:
            if not -(num_layers + 1) <= layer <= num_layers:
                raise ConfigurationError(f"layer {layer} out of range for {self.model_name} ({num_layers} layers)")

    @property
    def cache(self) -> TeacherCache:
        if self._cache is None:
            digest = hashlib.sha256()
            for name in sorted(os.listdir(self.model_name)):
                path = os.path.join(self.model_name, name)
                if os.path.isfile(path):
                    digest.update(name.encode("utf-8") + file_sha256(path).encode("ascii"))
            digest.update(json.dumps([self.layers, self.pooling, self.max_pieces]).encode("utf-8"))
            self._cache = TeacherCache(self.cache_directory, digest.hexdigest())
        return self._cache

    @staticmethod
    def _key(words: List[str]) -> str:
        return sequence_key(words, digits=40)

    def hidden_size(self) -> int:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.model_name).hidden_size

    def encoder_parameters(self) -> int:
        """The parameters of the encoder (loaded if it is not yet), which count as the reading model's."""
        self._load()
        return sum(p.numel() for p in self._encoder.parameters())

    # -- features ------------------------------------------------------------------------------------
    def encode(self, sentences: List[List[str]]) -> List[np.ndarray]:
        """Features ``(n, len(layers), H)`` float16 of each sentence, computed in one padded batch, never cached."""
        self._load()
        hidden = self._encoder.config.hidden_size
        results = [np.zeros((len(words), len(self.layers), hidden), dtype=np.float16) for words in sentences]
        windows = []  # (sentence, its word indices, their piece counts, input ids): whole words, <= max_pieces
        for s, words in enumerate(sentences):
            pieces = [self._tokenizer.tokenize(w) or [self._tokenizer.unk_token] for w in words]
            current: List[int] = []
            for i in range(len(words) + 1):
                size = sum(len(pieces[j]) for j in current)
                if current and (i == len(words) or size + len(pieces[i]) > self.max_pieces):
                    flat = [p for j in current for p in pieces[j]][: self.max_pieces]
                    ids = self._tokenizer.build_inputs_with_special_tokens(self._tokenizer.convert_tokens_to_ids(flat))
                    windows.append((s, current, [len(pieces[j]) for j in current], ids))
                    current = []
                if i < len(words):
                    current.append(i)
        if not windows:
            return results
        longest = max(len(ids) for *_, ids in windows)
        pad = self._tokenizer.pad_token_id or 0
        input_ids = torch.tensor([ids + [pad] * (longest - len(ids)) for *_, ids in windows])
        attention = torch.tensor([[1] * len(ids) + [0] * (longest - len(ids)) for *_, ids in windows])
        with torch.no_grad():
            states = self._encoder(input_ids=input_ids, attention_mask=attention, output_hidden_states=True).hidden_states
        chosen = torch.stack([states[layer] for layer in self.layers], dim=2)  # (windows, pieces, K, H)
        for w, (s, word_ids, counts, ids) in enumerate(windows):
            start = 1  # after the start token
            for i, count in zip(word_ids, counts):
                count = min(count, max(len(ids) - 1 - start, 0))  # pieces past max_pieces were cut
                if count:
                    span = chosen[w, start : start + count]
                    results[s][i] = (span[0] if self.pooling == "first" else span.mean(0)).numpy().astype(np.float16)
                start += count
        return results

    def features(self, sentences: List[List[str]]) -> List[np.ndarray]:
        """Features of each sentence, from the cache where it has them (and matches), else computed and cached."""
        keys = [self._key(words) for words in sentences]
        found = self.cache.get_many(keys)
        result: Dict[str, np.ndarray] = {}
        for words, key in zip(sentences, keys):
            entry = found.get(key)
            if entry is not None and entry.get("features") is not None and entry["features"].shape[:2] == (len(words), len(self.layers)):
                result[key] = entry["features"]
            elif entry is not None:
                logger.warning("encoder feature cache %s: entry for %r does not match the sentence; recomputing",
                               self.cache.path, " ".join(words)[:60])
        missing = [(key, words) for key, words in zip(keys, sentences) if key not in result]
        if missing:
            computed = self.encode([words for _, words in missing])
            self.cache.put_many((key, {"features": value}) for (key, _), value in zip(missing, computed))
            result.update((key, value) for (key, _), value in zip(missing, computed))
        return [result[key] for key in keys]

    # -- TokenIndexer --------------------------------------------------------------------------------
    def count_vocab_items(self, token: Token, counter: Dict[str, Dict[str, int]]):
        pass

    def prefetch(self, sentences: List[List[str]]) -> None:
        """Features of the sentences about to be indexed, in one batched lookup (and encoder pass for those not cached)."""
        self._prefetched = {self._key(words): value for words, value in zip(sentences, self.features(sentences))}

    def tokens_to_indices(self, tokens: List[Token], vocabulary: Vocabulary) -> IndexedTokenList:
        words = [cast(str, t.text) for t in tokens]
        features = self._prefetched.pop(self._key(words), None)
        if features is None:
            (features,) = self.features([words])
        return {"features": features}  # type: ignore[dict-item]  # an array where AllenNLP types a list

    def get_empty_token_list(self) -> IndexedTokenList:
        return {"features": np.zeros((0, len(self.layers), 1), dtype=np.float16)}  # type: ignore[dict-item]

    def get_padding_lengths(self, indexed_tokens: IndexedTokenList) -> Dict[str, int]:
        return {"features": len(indexed_tokens["features"])}

    def as_padded_tensor_dict(self, tokens: IndexedTokenList, padding_lengths: Dict[str, int]) -> Dict[str, torch.Tensor]:
        features = torch.from_numpy(np.asarray(tokens["features"], dtype=np.float32))
        missing = padding_lengths["features"] - features.size(0)
        if missing > 0:
            features = torch.cat([features, features.new_zeros(missing, *features.shape[1:])]) if features.numel() else \
                torch.zeros(padding_lengths["features"], len(self.layers), 1)
        return {"features": features}

    def __eq__(self, other) -> bool:
        return isinstance(other, FrozenEncoderIndexer) and (self.model_name, self.layers, self.pooling) == \
            (other.model_name, other.layers, other.pooling)


def precompute(indexer: FrozenEncoderIndexer, sentences: Iterable[List[str]], batch: int = 64, progress: bool = True) -> int:
    """Fill the cache for ``sentences`` (a progress bar); returns how many there were."""
    from tqdm import tqdm

    sentences = sorted(sentences, key=len)  # batches of similar lengths: little padding
    for start in tqdm(range(0, len(sentences), batch), desc="encoder features", unit="batch", disable=not progress):
        indexer.features(sentences[start : start + batch])
    return len(sentences)
