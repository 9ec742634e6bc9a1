"""
``structkd_wordpieces``: each word as the list of its word pieces under a pretrained encoder's
tokenizer, indexed in a vocabulary namespace of the student's own.

A small student that starts from its teacher's knowledge reads words through the teacher
encoder's word pieces (:class:`~allennlp_structkd.modules.compressed_wordpiece_embedder.CompressedWordpieceEmbedder`
initialises their vectors from the encoder's, compressed). Its vocabulary holds only the pieces of
the text it is built from (AllenNLP builds it from the training and validation data: the labeled
sentences, the transfer text, dev), so that the student stays small; a piece outside it maps to the
namespace's unknown entry, whose vector is the encoder's unknown piece, and is counted in the log.
"""
import hashlib
import json
import logging
import os
from functools import cache, lru_cache
from typing import Dict, List

from allennlp.common.checks import ConfigurationError
from allennlp.data import Token, Vocabulary
from allennlp.data.token_indexers import TokenCharactersIndexer, TokenIndexer

from allennlp_structkd.allennlp_private import oov_token

logger = logging.getLogger(__name__)


def load_tokenizer(model_name: str):
    """The Hugging Face tokenizer of a local encoder folder; a clear error when the folder is not one."""
    if not model_name or not os.path.isdir(model_name):
        raise ConfigurationError(
            f"the word-piece encoder folder {model_name!r} does not exist: give a local Hugging Face model folder "
            "(e.g. the multilingual-e5-small that `make encoders` builds)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_name)


@cache
def vocabulary_fingerprint(model_name: str) -> str:
    """The first 16 hex digits of SHA-256 over an encoder's word-piece vocabulary (piece -> id, sorted)."""
    vocab = load_tokenizer(model_name).get_vocab()
    return hashlib.sha256(json.dumps(sorted(vocab.items())).encode("utf-8")).hexdigest()[:16]


class _PieceTokenizer:
    """Splits a word into word pieces, the way ``TokenCharactersIndexer`` splits it into characters."""

    def __init__(self, model_name: str, max_pieces: int) -> None:
        self.tokenizer = load_tokenizer(model_name)
        self.max_pieces = max_pieces
        self.pieces = lru_cache(maxsize=200_000)(self._pieces)

    def _pieces(self, word: str) -> tuple:
        pieces = self.tokenizer.tokenize(word)
        return tuple(pieces[: self.max_pieces]) or (self.tokenizer.unk_token,)

    def tokenize(self, text: str) -> List[Token]:
        return [Token(piece) for piece in self.pieces(text)]


@TokenIndexer.register("structkd_wordpieces")
class WordpieceIndexer(TokenCharactersIndexer):
    """
    Each word as its word pieces (``tokenizer.tokenize(word)``, at most ``max_pieces``), indexed in
    ``namespace``; tensors as the ``characters`` indexer's, ``(B, n_words, n_pieces)`` under the key
    ``token_characters``.

    # Parameters

    model_name : `str`, required
        A local Hugging Face encoder folder whose tokenizer splits the words.
    namespace : `str`, optional (default = `"wordpieces"`)
        The student's vocabulary namespace of pieces.
    max_pieces : `int`, optional (default = `16`)
        A word's pieces beyond this many are dropped (a very long token would otherwise widen the batch).
    token_min_padding_length : `int`, optional (default = `0`)
        See :class:`TokenIndexer`.
    """

    def __init__(self, model_name: str, namespace: str = "wordpieces", max_pieces: int = 16,
                 token_min_padding_length: int = 0) -> None:
        if max_pieces < 1:
            raise ConfigurationError(f"max_pieces must be at least 1, got {max_pieces}")
        self.model_name, self.max_pieces = model_name, max_pieces
        super().__init__(namespace=namespace, character_tokenizer=_PieceTokenizer(model_name, max_pieces),  # type: ignore[arg-type]
                         min_padding_length=1, token_min_padding_length=token_min_padding_length)
        self.pieces_seen = 0
        self.pieces_unknown = 0
        self._next_report = 1

    def tokens_to_indices(self, tokens: List[Token], vocabulary: Vocabulary) -> Dict[str, List[List[int]]]:
        unknown = vocabulary.get_token_index(oov_token(vocabulary), self._namespace)
        indices = []
        for token in tokens:
            if token.text is None:
                raise ConfigurationError("structkd_wordpieces needs tokens that keep their text")
            row = [vocabulary.get_token_index(piece.text, self._namespace)  # type: ignore[arg-type]  # pieces have text
                   for piece in self._character_tokenizer.tokenize(token.text)]
            self.pieces_seen += len(row)
            self.pieces_unknown += sum(index == unknown for index in row)
            indices.append(row)
        if self.pieces_unknown >= self._next_report:
            logger.info("%d of %d word pieces read so far are not in the student's vocabulary (namespace %r): they map "
                        "to the unknown piece's vector", self.pieces_unknown, self.pieces_seen, self._namespace)
            self._next_report = 10 * self.pieces_unknown
        return {"token_characters": indices}
