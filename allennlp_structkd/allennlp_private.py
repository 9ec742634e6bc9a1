"""
What AllenNLP 2.10 keeps only in private attributes, read here and nowhere else in the library: an AllenNLP
release that renames one breaks this module alone (``tests/test_package_structure.py`` checks that no other
module reads another object's private attribute). A label field's namespace and whether it is indexed, a
vocabulary's padding and unknown tokens, the local encoder folder a token indexer reads words with, the layout
of the embedders the exporter converts, a trainer's epoch count and metric tracker, a transformer embedder's
folding of long inputs, and a reader's sharding hooks, which a wrapping reader passes on.

(A subclass still uses the protected members its AllenNLP base class gives subclasses, as AllenNLP's own
subclasses do: a predictor's ``self._model``, an indexer's ``self._namespace``.)
"""
import os
from typing import Any, Dict, Optional, Tuple, Union

import torch
from allennlp.data import DatasetReader, Vocabulary
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


def mark_namespace_warned(namespace: str) -> None:
    """Mark AllenNLP's one-time advice about a label namespace's name (not ending in 'labels' or 'tags') as given."""
    SequenceLabelField._already_warned_namespaces.add(namespace)


# -- a wrapping reader passes the data loader's sharding on to the readers it wraps ------------------------------
def pass_worker_info(reader: DatasetReader, info) -> None:
    reader._set_worker_info(info)


def pass_distributed_info(reader: DatasetReader, info) -> None:
    reader._set_distributed_info(info)


# -- a trainer's progress, for a callback that changes the schedule ------------------------------------------------
def epochs_completed(trainer) -> int:
    """The epochs a (gradient descent) trainer has completed, counting those before a ``--recover``."""
    return max(getattr(trainer, "_start_after_epochs_completed", 0), getattr(trainer, "_epochs_completed", 0))


def restart_metric_tracker(trainer, epoch: int) -> None:
    """Forget the validation metrics tracked so far (a new stage is compared only with itself), keeping the epoch
    numbers of its best epochs counted from the run's start."""
    tracker = getattr(trainer, "_metric_tracker", None)
    if tracker is not None:
        tracker.clear()
        tracker._epoch_number = epoch


# -- a transformer embedder folds inputs longer than its positions into segments -------------------------------------
def unfold_long_states(embedder, states: torch.Tensor, token_ids: torch.Tensor,
                       segment_concat_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Hidden ``states`` of the segments a ``PretrainedTransformerEmbedder`` folded ``token_ids`` into, unfolded back to
    ``(batch, pieces, dim)`` as its forward does with its output."""
    _, folded_mask, _ = embedder._fold_long_sequences(token_ids, segment_concat_mask, None)
    return embedder._unfold_long_sequences(states, folded_mask, token_ids.size(0), token_ids.size(1))


# -- the layout of the input embedders the exporter converts ---------------------------------------------------------
def token_embedders(text_field_embedder) -> Dict[str, Any]:
    """A ``BasicTextFieldEmbedder``'s token embedders by name."""
    return dict(text_field_embedder._token_embedders)


def wrapped_module(wrapper) -> Any:
    """The module a ``PytorchSeq2SeqWrapper`` or ``TimeDistributed`` wraps (None for another encoder)."""
    return getattr(wrapper, "_module", None)


def word_embedding_layout(embedding, indexer) -> Dict[str, Any]:
    """What an ``Embedding`` read through a ``SingleIdTokenIndexer`` does beyond a table lookup."""
    return {"projection": embedding._projection, "namespace": embedding._vocab_namespace,
            "start_tokens": indexer._start_tokens, "end_tokens": indexer._end_tokens, "feature_name": indexer._feature_name}


def character_encoder_layout(embedder, indexer) -> Tuple[Any, Any, Dict[str, Any]]:
    """A ``TokenCharactersEncoder`` read through a ``TokenCharactersIndexer``: ``(encoder, embedding, settings)``, the
    modules it wraps and the settings of the encoder (a ``CnnEncoder``'s, where it is one), the indexer and its
    character tokenizer."""
    encoder, embedding = wrapped_module(embedder._encoder), wrapped_module(embedder._embedding)
    characters = indexer._character_tokenizer
    settings = {"namespace": getattr(embedding, "_vocab_namespace", None), "min_padding": indexer._min_padding_length,
                "byte_encoding": characters._byte_encoding, "start_tokens": characters._start_tokens,
                "end_tokens": characters._end_tokens, "lowercase": characters._lowercase_characters,
                "activation": getattr(encoder, "_activation", None), "filters": getattr(encoder, "_num_filters", None),
                "ngram_sizes": list(getattr(encoder, "_ngram_filter_sizes", ()))}
    return encoder, embedding, settings
