"""
What AllenNLP 2.10 keeps only in private attributes, read here and nowhere else in the training path: an
AllenNLP release that renames one breaks this module alone. A label field's namespace and whether it is
indexed, a vocabulary's padding and unknown tokens, and the local encoder folder a token indexer reads
words with. (The exporter reads the private layout of the embedders it converts; it says so where it does.)
"""
import os
from typing import Optional, Union

from allennlp.data import Vocabulary
from allennlp.data.fields import LabelField, SequenceLabelField


def label_namespace(field: Union[SequenceLabelField, LabelField]) -> str:
    """The vocabulary namespace a label field's labels are indexed in."""
    return field._label_namespace


def is_indexed(field: LabelField) -> bool:
    """Whether a label field's labels are strings to index (not integers given as they are)."""
    return not field._skip_indexing


def padding_token(vocab: Vocabulary) -> str:
    return vocab._padding_token


def oov_token(vocab: Vocabulary) -> str:
    return vocab._oov_token


def indexer_encoder_folder(indexer) -> Optional[str]:
    """The local encoder folder a token indexer reads words with (the frozen encoder, or a transformer through
    AllenNLP's (mismatched) indexer, whose tokenizer keeps the name), if any."""
    indexer = getattr(indexer, "_matched_indexer", indexer)
    tokenizer = getattr(indexer, "_allennlp_tokenizer", None)
    folder = getattr(indexer, "model_name", None) or getattr(tokenizer, "_model_name", None)
    return folder if isinstance(folder, str) and os.path.isdir(folder) else None
