"""``structkd_characters``: AllenNLP's ``characters`` indexer with a bound on a word's characters."""
from typing import Dict, List

from allennlp.data import Token, Vocabulary
from allennlp.data.token_indexers import TokenCharactersIndexer, TokenIndexer
from allennlp.data.token_indexers.token_indexer import IndexedTokenList

# ELMo's bound on a word's characters (AllenNLP's ELMoCharacterMapper.max_word_length). A batch's character
# tensor is padded to its longest word, so one 40,000-character "word" (a pasted blob, a URL list) would
# cost gigabytes; a CNN over characters max-pools n-gram windows, and a word's first 50 characters are
# what it sees of any real word.
MAX_WORD_CHARACTERS = 50


@TokenIndexer.register("structkd_characters")
class BoundedTokenCharactersIndexer(TokenCharactersIndexer):
    """
    AllenNLP's ``characters`` indexer, reading at most ``max_characters`` characters of each word
    (the exported student and the spaCy component read the same).

    # Parameters

    max_characters : `int`, optional (default = `50`)
        The characters kept of a word, from its start.
    **kwargs
        Those of ``characters`` (``namespace``, ``character_tokenizer``, ``min_padding_length``, ...).
    """

    def __init__(self, max_characters: int = MAX_WORD_CHARACTERS, **kwargs) -> None:
        super().__init__(**kwargs)
        if max_characters < 1:
            raise ValueError(f"max_characters must be positive, got {max_characters}")
        self.max_characters = max_characters

    def _bounded(self, token: Token) -> Token:
        text = token.text
        if text is None or len(text) <= self.max_characters:
            return token
        return Token(text=text[: self.max_characters])

    def count_vocab_items(self, token: Token, counter: Dict[str, Dict[str, int]]) -> None:
        super().count_vocab_items(self._bounded(token), counter)

    def tokens_to_indices(self, tokens: List[Token], vocabulary: Vocabulary) -> IndexedTokenList:
        return super().tokens_to_indices([self._bounded(token) for token in tokens], vocabulary)
