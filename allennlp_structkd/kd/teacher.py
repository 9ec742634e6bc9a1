"""A teacher: a loaded model archive that annotates sentences with what a KD objective needs from it."""
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Tuple, cast

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Batch, Field, Instance
from allennlp.data.fields import SequenceLabelField, TextField
from allennlp.data.tokenizers import Token
from allennlp.nn import util as nn_util

from allennlp_structkd.allennlp_private import indexer_encoder_folder
from allennlp_structkd.archives import load_model_archive
from allennlp_structkd.kd.cache import TeacherCache, file_sha256
from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.protocol import KDTeacher, PrecomputingIndexer
from allennlp_structkd.kd.targets import expand_entries, split_shared, trim_to_length
from allennlp_structkd.kd.teacher_archive import teacher_archive
from allennlp_structkd.keys import sequence_key


class LoadedTeacher(ABC):
    """
    A teacher ready to annotate, whatever it was loaded from (a model archive, a Hugging Face folder): what the
    teacher reader asks of it.

    * ``source``: what it was loaded from (for messages); ``hash``: its content's SHA-256 (its cache's name);
    * ``labels`` / ``namespace``: the student-side label strings its targets are indexed by;
    * ``needs_pos``: whether it reads the sentence's PoS tags (then part of its cache key);
    * ``cache``: its :class:`TeacherCache`.
    """

    source: str
    archive_path: str  # the same as source (the name its messages have always used)
    hash: str
    labels: List[str]
    namespace: str
    needs_pos: bool
    cache: TeacherCache

    @abstractmethod
    def check_teaches(self, objective: KDLoss) -> None:
        """A clear error when it cannot give what ``objective`` asks for (see :func:`check_recipe`)."""

    @abstractmethod
    def input_key(self, metadata: Dict) -> str:
        """What it reads of a sentence, as a cache key."""

    @abstractmethod
    def annotate(self, sentences: List[Dict], objective: KDLoss) -> List[Dict[str, np.ndarray]]:
        """Each sentence's targets in the objective's storage form (``objective.storage_targets``; the reader expands
        them), and its ``pseudo_tags``, trimmed to its length, in :attr:`labels` order."""

    @abstractmethod
    def encoder_folders(self) -> List[str]:
        """The local encoder folders it reads word pieces with (a student of word pieces must share their vocabulary)."""

    # -- its cache: the one place a cache key is made ------------------------------------------
    def cache_key(self, objective: KDLoss, metadata: Dict) -> str:
        """The key of a sentence's targets: the objective's signature, then what this teacher reads of the sentence."""
        return f"{objective.signature()}|{self.input_key(metadata)}"

    @staticmethod
    def shared_key(objective: KDLoss) -> str:
        """The key of what every sentence's targets share (a chain's transitions), kept once a teacher."""
        return f"{objective.signature()}|shared"

    def annotate_cached(self, sentences: List[Dict], objective: KDLoss,
                        cache_required: bool = False) -> Tuple[List[Dict[str, np.ndarray]], int]:
        """
        ``(each sentence's targets as a student trains with them, how many were computed)``: looked up in the cache,
        else computed (:meth:`annotate`) and stored, then expanded from their storage form in one batch
        (:func:`~allennlp_structkd.kd.targets.expand_entries`). ``sentences``: the instances' metadata;
        ``cache_required``: a cache that cannot store them is an error (``annotate``), not a note in the log.
        """
        keys = [self.cache_key(objective, metadata) for metadata in sentences]
        shared_key = self.shared_key(objective)
        found = self.cache.get_many(keys + [shared_key])
        shared = found.pop(shared_key, None)
        missing = [(i, key) for i, key in enumerate(keys) if key not in found]
        if missing:
            computed, computed_shared = split_shared(self.annotate([sentences[i] for i, _ in missing], objective))
            if computed_shared and shared is None:
                self.cache.put_many([(shared_key, computed_shared)], required=cache_required)
                shared = computed_shared
            self.cache.put_many(zip((key for _, key in missing), computed), required=cache_required)
            found.update(zip((key for _, key in missing), computed))
        # stored forms (a chain's scores) become the objective's targets here
        entries = [dict(found[key], **shared) if shared and "teacher_emissions" in found[key] else found[key] for key in keys]
        return expand_entries(objective, entries), len(missing)


class Teacher(LoadedTeacher):
    """
    A model archive loaded as a teacher: its labels, the token indexers of its reader, its cache of
    outputs, and :meth:`annotate`, which batches sentences by cost and calls the model's
    ``teacher_outputs(objective, **tensors)``.
    """

    def __init__(self, archive_path: str, cuda_device: int, cache_directory: str) -> None:
        archive_path = teacher_archive(archive_path, cache_directory)  # a config must have been trained (never here)
        self.archive_path = self.source = archive_path
        self.hash = file_sha256(archive_path)
        try:
            archive = load_model_archive(archive_path, cuda_device=cuda_device)
        except ConfigurationError as error:
            raise ConfigurationError(f"teacher {error}; or give a teacher training config (.jsonnet)") from None
        self.model = archive.model
        self.model.eval()
        if not isinstance(self.model, KDTeacher):
            raise ConfigurationError(f"the model in {archive_path} ({type(self.model).__name__}) cannot act as a teacher: "
                                     "teachers derive from KDTeacher (the project's taggers, graph parsers and span NER model)")
        self.teacher: KDTeacher = self.model  # the same model, as what it is to distillation
        self.labels: List[str] = list(self.model.labels)
        self.namespace = self.model.label_namespace
        self.indexers = archive.dataset_reader.token_indexers  # type: ignore[attr-defined]
        self.needs_pos = self.model.reads_pos
        self.cache = TeacherCache(cache_directory, self.hash)
        self.cuda_device = cuda_device

    def check_teaches(self, objective: KDLoss) -> None:
        self.teacher.check_teaches(objective)

    def encoder_folders(self) -> List[str]:
        return [folder for folder in (indexer_encoder_folder(i) for i in (self.indexers or {}).values()) if folder]

    def input_key(self, metadata: Dict) -> str:
        """
        What this teacher reads of a sentence, as a cache key: the language and words (the
        sentence id), and the PoS tags where the teacher embeds them.
        """
        key = metadata["sentence_id"]
        if self.needs_pos:
            upos = metadata.get("upos")
            if upos is None:
                raise ConfigurationError(f"teacher {self.archive_path} embeds PoS tags: read the student's data with UPOS "
                                         f"({metadata.get('file')}, line {metadata.get('line')})")
            key += "|upos=" + sequence_key(upos)
        return key

    # A batch's cost bound: sentences x (padded length)^2 (the arc scores of parsers are n^2 a
    # sentence; a second-order parser's n^3 tensors stay near this times n). Sentences are sorted
    # by length and batched up to it, so one long sentence does not pad a whole batch to its length
    # (a 249-word PTB sentence in a batch of 64 would need 4 GB per (B, n, n, n) tensor).
    MAX_BATCH_CELLS = 160_000

    def annotate(self, sentences: List[Dict], objective: KDLoss) -> List[Dict[str, np.ndarray]]:
        """``sentences``: the students' instances' metadata (``words``, and ``upos`` where read)."""
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]["words"]))
        results: List[Optional[Dict[str, np.ndarray]]] = [None] * len(sentences)
        group: List[int] = []
        for i in order + [None]:
            longest = len(sentences[i]["words"]) if i is not None else 0
            if group and (i is None or (len(group) + 1) * max(longest, 1) ** 2 > self.MAX_BATCH_CELLS):
                for j, result in zip(group, self._annotate_batch([sentences[j] for j in group], objective)):
                    results[j] = result
                group = []
            if i is not None:
                group.append(i)
        return cast(List[Dict[str, np.ndarray]], results)  # every sentence is in one group

    def _annotate_batch(self, sentences: List[Dict], objective: KDLoss) -> List[Dict[str, np.ndarray]]:
        words = [meta["words"] for meta in sentences]
        instances = []
        for meta in sentences:
            tokens = TextField([Token(w) for w in meta["words"]], self.indexers)
            fields: Dict[str, Field] = {"tokens": tokens}
            if meta.get("upos") is not None:  # parsers that embed PoS need it
                fields["upos"] = SequenceLabelField(meta["upos"], tokens, label_namespace="pos")
            instances.append(Instance(fields))
        if self.needs_pos and any("upos" not in inst.fields for inst in instances):
            raise ConfigurationError(f"teacher {self.archive_path} embeds PoS tags: read the student's data with UPOS")
        if not self.needs_pos:
            for inst in instances:
                inst.fields.pop("upos", None)
        for indexer in self.indexers.values():  # a frozen encoder: the whole batch in one pass, not one per sentence
            if isinstance(indexer, PrecomputingIndexer):
                indexer.prefetch(words)
        batch = Batch(instances)
        batch.index_instances(self.model.vocab)
        tensors = nn_util.move_to_device(batch.as_tensor_dict(), self.cuda_device)
        with torch.no_grad():
            targets, pseudo, mask = self.teacher.teacher_outputs(objective, **tensors)
            lengths = mask.long().sum(1).tolist()
            for ws, n in zip(words, lengths):
                if n != len(ws):
                    raise ConfigurationError(
                        f"teacher {self.archive_path} sees {n} tokens in a sentence of {len(ws)} words ({' '.join(ws)[:80]!r}): "
                        "KD works on words; give the teacher a word-level embedder (e.g. pretrained_transformer_mismatched)"
                    )
            if pseudo is not None:
                targets = dict(targets, pseudo_tags=pseudo)
        return [
            {name: trim_to_length(name, value[b], n).detach().cpu().numpy() for name, value in targets.items()}
            for b, n in enumerate(lengths)
        ]
