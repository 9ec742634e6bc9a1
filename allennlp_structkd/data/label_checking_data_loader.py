"""
``structkd_data_loader``: AllenNLP's multiprocess data loader, with a clear error for a label the model
never saw.

Evaluating a model on data with a label outside its vocabulary (``allennlp evaluate`` of an NER
student on data with a ``MISC`` type it was never trained on) stops AllenNLP's loader with a bare
``KeyError: "'I-MISC' not found in vocab namespace 'labels'"``. This loader names the label, the
field, the file and the line. It is AllenNLP's ``multiprocess`` loader otherwise, with the same settings.
"""
from typing import Any, List, cast

from allennlp.common.checks import ConfigurationError
from allennlp.data import DataLoader, Instance, Vocabulary
from allennlp.data.data_loaders import MultiProcessDataLoader
from allennlp.data.fields import LabelField, MetadataField, SequenceLabelField

from allennlp_structkd.allennlp_private import is_indexed, label_namespace, oov_token


def unknown_label(instance: Instance, vocab: Vocabulary):
    """A message naming the first gold label of ``instance`` that ``vocab`` lacks, with its file and line; or None."""
    labels: List[Any]
    for name, field in instance.fields.items():
        if isinstance(field, SequenceLabelField):
            labels, namespace = field.labels, label_namespace(field)
        elif isinstance(field, LabelField) and is_indexed(field):
            labels, namespace = [field.label], label_namespace(field)
        else:
            continue
        if not isinstance(namespace, str) or oov_token(vocab) in vocab.get_token_to_index_vocabulary(namespace):
            continue  # a namespace with an unknown entry takes any label
        known = vocab.get_token_to_index_vocabulary(namespace)
        missing = [label for label in labels if isinstance(label, str) and label not in known]
        if missing:
            metadata = cast(MetadataField, instance.fields["metadata"]).metadata if "metadata" in instance.fields else {}
            return (f"{metadata.get('file', '?')}, line {metadata.get('line', '?')}: label {missing[0]!r} (field {name!r}) "
                    f"is not a label of the model, which knows {len(known)} in namespace {namespace!r}: "
                    f"{sorted(known)[:12]}{' ...' if len(known) > 12 else ''}")
    return None


def index_checked(instance: Instance, vocab: Vocabulary) -> Instance:
    """``instance.index_fields(vocab)``; a label the vocabulary lacks is an error naming it, its file and line."""
    try:
        instance.index_fields(vocab)
    except KeyError as error:
        message = unknown_label(instance, vocab)
        if message is None:
            raise
        raise ConfigurationError(message) from error
    return instance


@DataLoader.register("structkd_data_loader")
class LabelCheckingDataLoader(MultiProcessDataLoader):
    """AllenNLP's ``multiprocess`` loader (same settings); an unknown label is an error naming its file and line."""

    def index_with(self, vocab: Vocabulary) -> None:
        self._vocab = vocab
        if self._instances:
            for instance in self._instances:
                index_checked(instance, vocab)

    def _index_instance(self, instance: Instance) -> Instance:
        self.reader.apply_token_indexers(instance)  # type: ignore[has-type]  # set by MultiProcessDataLoader.__init__
        assert self._vocab is not None
        return index_checked(instance, self._vocab)
