"""
The teacher-wrapping reader: any base reader's instances, annotated with what a KD objective
needs from the teacher of each sentence's language, computed once and cached on disk.
"""
import itertools
import json
import logging
import os
import random
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance
from allennlp.data.fields import MetadataField, SequenceLabelField, TensorField, TextField

from allennlp_structkd.allennlp_private import label_namespace, pass_distributed_info, pass_worker_info
from allennlp_structkd.dataset_readers.common import DEFAULT_LANG, StructKDReader, parse_json_path, parse_path_map
from allennlp_structkd.dataset_readers.teacher_targets_field import TeacherTargetsField
from allennlp_structkd.dataset_readers.unlabeled_text import UnlabeledTextReader
from allennlp_structkd.kd.cache import default_cache_directory
from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.targets import spec_of
from allennlp_structkd.kd.teacher import LoadedTeacher
from allennlp_structkd.kd.teacher_source import TeacherSource, as_teacher_source
from allennlp_structkd.settings import reject_unknown_settings

logger = logging.getLogger(__name__)

def _metadata(instance: Instance) -> Dict[str, Any]:
    return cast(MetadataField, instance["metadata"]).metadata


def _tokens(instance: Instance) -> TextField:
    return cast(TextField, instance["tokens"])


def _source_size(reader: DatasetReader, path: str) -> int:
    """About how many sentences a source holds (its ``{lang: path}`` map and globs expanded), for :func:`interleaved`:
    counted by a reader of ours (:meth:`StructKDReader.count_sentences`), else the files' bytes."""
    pairs = parse_path_map(path, getattr(reader, "lang", DEFAULT_LANG))
    files = [file for _, file in pairs if os.path.isfile(file)]
    if isinstance(reader, StructKDReader):
        return sum(reader.count_sentences(file) for file in files)
    return sum(os.path.getsize(file) for file in files)


def interleaved(streams: List[Iterator], weights: List[float]) -> Iterator:
    """The items of every stream, each stream's in its order, interleaved so that stream ``i`` has given about
    ``weights[i] / sum(weights)`` of the items so far (smooth weighted round robin); a stream that ends leaves the
    rest to the others."""
    live = list(range(len(streams)))
    given = [0] * len(streams)
    while live:
        i = min(live, key=lambda k: ((given[k] + 1) / weights[k], k))
        try:
            item = next(streams[i])
        except StopIteration:
            live.remove(i)
            continue
        given[i] += 1
        yield item


def shuffled(items: Iterable, size: int, rng: random.Random) -> Iterator:
    """The items in random order within a window: a buffer of ``size`` items, each next item taking the place of a
    random one of them, which is given out (what tf.data's shuffle buffer does); an item comes out at most ``size``
    places before it went in, and at most ``size`` are held at once."""
    buffer: List = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        k = rng.randrange(size)
        buffer[k], item = item, buffer[k]
        yield item
    rng.shuffle(buffer)
    yield from buffer


@DatasetReader.register("structkd_teacher")
class TeacherAnnotatingReader(DatasetReader):
    """
    Wraps ``base_reader``; sends each instance to the teacher of its ``metadata["lang"]``
    (``teachers`` maps languages to model archives, or to teacher training configs trained once, before
    reading, by :meth:`prepare_teachers`; ``default_teacher``, a key of ``teachers``,
    takes languages without one of their own), and attaches what ``objective`` needs
    (:meth:`KDLoss.teacher_targets`) as one :class:`TeacherTargetsField` ``teacher_targets`` (labels
    are matched by string), and ``has_gold``.

    ``file_path`` is what the base reader takes (a path or a JSON ``{lang: path}``), or a JSON
    object ``{"labeled": ..., "unlabeled": ...}`` whose ``unlabeled`` part (a path or a
    ``{lang: path}`` map of one-sentence-a-line text) goes through ``unlabeled_reader``. Unlabeled
    sentences get the teacher's best labels as placeholder ``tags`` with ``has_gold = 0``: the
    model trains them on the KD loss only and leaves them out of its metrics.

    Teachers run on ``cuda_device`` (-1: the CPU; default: the first GPU when torch sees one).
    Teacher outputs are computed in batches of ``batch_size`` sentences under ``torch.no_grad()``
    and cached (see :mod:`allennlp_structkd.kd.cache`) in ``cache_directory``, so a second epoch or
    a second run never calls the teacher again. ``python -m allennlp_structkd.annotate`` fills the
    cache from several worker processes before training.

    # Parameters

    base_reader : `DatasetReader`, required
        Reads the labeled data (e.g. ``structkd_conll_ner``).
    teachers : `Dict[str, Union[str, TeacherSource]]`, required
        Language -> a teacher: a model archive, a teacher training config (trained once and cached by an
        explicit step: :meth:`prepare_teachers`; reading never trains it), a
        Hugging Face token-classification folder, or a :class:`TeacherSource` object such as
        ``{"type": "huggingface", "model": FOLDER, "label_mapping": {...}}``.
    objective : `KDLoss`, required
        What the student distils; it says which teacher outputs the instances carry.
    default_teacher : `str`, optional (default = `None`)
        A key of ``teachers``, for languages without a teacher of their own.
    unlabeled_reader : `DatasetReader`, optional (default = `None`)
        Reads the ``unlabeled`` part of a transfer spec; default: one sentence a line, whitespace tokens, at most
        512 a line, as strict as ``base_reader`` (with ``strict: false`` a bad line is skipped and counted).
    cache_directory : `str`, optional (default = `None`)
        Where teacher outputs (and teachers trained from configs) are kept; default
        ``~/.cache/allennlp_structkd``.
    batch_size : `int`, optional (default = `64`)
        Sentences per teacher forward pass.
    cuda_device : `int`, optional (default = `None`)
        The teachers' device: -1 the CPU, a GPU index, or None for the first GPU torch sees.
    mix_sources : `bool`, optional (default = `False`)
        Interleave the labeled and the unlabeled sentences of every language as they are read, each file's in
        proportion to its number of sentences (otherwise the labeled sentences come first, a language after the other). For a data
        loader that holds part of the data at a time (``max_instances_in_memory``, a transfer set larger than
        memory): every stretch it holds then mixes both kinds and every language, as a loader holding everything
        does by sorting and shuffling.
    shuffle_buffer : `int`, optional (default = `0`)
        With such a loader, read the training sentences in random order within a window of this many (:func:`shuffled`;
        a new order every epoch, from the run's random seed), so that what the loader holds is not a run of
        neighbouring sentences of one document; it holds this many sentences more. 0: in the order read.
    """

    def __init__(
        self,
        base_reader: DatasetReader,
        teachers: Dict[str, Union[str, TeacherSource]],
        objective: KDLoss,
        default_teacher: Optional[str] = None,
        unlabeled_reader: Optional[DatasetReader] = None,
        cache_directory: Optional[str] = None,
        batch_size: int = 64,
        cuda_device: Optional[int] = None,
        mix_sources: bool = False,
        shuffle_buffer: int = 0,
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, DatasetReader, kwargs)
        super().__init__(manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs)
        if not teachers:
            raise ConfigurationError("structkd_teacher needs at least one teacher archive")
        if default_teacher is not None and default_teacher not in teachers:
            raise ConfigurationError(f"default_teacher {default_teacher!r} is not one of the teachers {sorted(teachers)}")
        self.base_reader = base_reader
        # the default reader of the transfer text is as strict as the labeled data's (STRUCTKD_STRICT): a bad line
        # of transfer text is then skipped and counted where a bad labeled sentence would be
        strict = base_reader.strict if isinstance(base_reader, StructKDReader) else True
        self.unlabeled_reader = unlabeled_reader or UnlabeledTextReader(
            token_indexers=getattr(base_reader, "token_indexers", None), strict=strict)
        self.teacher_sources = {lang: as_teacher_source(value) for lang, value in teachers.items()}
        self.teacher_paths = {lang: source.describe() for lang, source in self.teacher_sources.items()}
        self.default_teacher = default_teacher
        self.objective = objective
        self.cache_directory = cache_directory or default_cache_directory()
        self.batch_size = batch_size
        self.mix_sources = mix_sources
        if shuffle_buffer < 0:
            raise ConfigurationError(f"shuffle_buffer must be 0 (no shuffling) or a number of sentences, got {shuffle_buffer}")
        self.shuffle_buffer = shuffle_buffer
        # None: the first GPU when torch sees one, else the CPU (as AllenNLP's trainer chooses)
        self.cuda_device = cuda_device if cuda_device is not None else (0 if torch.cuda.is_available() else -1)
        self._teachers: Dict[str, LoadedTeacher] = {}
        self._by_path: Dict[str, LoadedTeacher] = {}
        self.teacher_calls = 0  # sentences the teachers actually annotated (cache misses)
        # Teachers load with the first sentence read (training reads at once, so a bad archive still
        # fails before the first epoch), not here: a distilled student's archive rebuilds this reader,
        # and evaluating or serving the student must not need its teachers, nor load them.
        self._languages_read: List[str] = []
        # one list, shared by every TeacherTargetsField made (and extended in place when a read brings a language)
        self._teacher_labels: List[str] = []
        self._gold_labels: Dict[str, set] = {}  # namespace -> the gold labels of the labeled sentences read

    @property
    def teacher_labels(self) -> List[str]:
        """The union of the label sets of the teachers of the languages read. They may differ (a label one language's
        training data lacks): the student's labels are their union, and a teacher gives probability 0 to a label it
        lacks. A teacher of a language the data does not hold is never loaded (nor trained, if it is a config)."""
        return self._teacher_labels

    def _languages(self, file_path: str) -> List[str]:
        """The languages a data path holds: the keys of its ``{lang: path}`` maps, or a plain path's reader language."""
        found: List[str] = []
        for reader, path in self._sources(file_path):
            mapping = parse_json_path(path)
            langs = list(mapping) if isinstance(mapping, dict) else [reader.lang if isinstance(reader, StructKDReader) else "xx"]
            found += [lang for lang in langs if lang not in found]
        return found

    def prepare_teachers(self, file_paths: Iterable[Optional[str]]) -> List[Tuple[str, str]]:
        """
        The explicit step before reading: the teachers of the languages ``file_paths`` hold (data paths as
        :meth:`read` takes them; None is skipped) do their one-time work, a teacher config being trained once and
        cached (:meth:`TeacherSource.prepare`). Returns ``(language, what was done)`` for each teacher that did any.
        """
        done: List[Tuple[str, str]] = []
        seen: set = set()
        for file_path in (p for p in file_paths if p is not None):
            for lang in self._languages(file_path):
                key = self._teacher_key(lang)
                if key is None or self.teacher_paths[key] in seen:  # no teacher: reading it says so
                    continue
                seen.add(self.teacher_paths[key])
                said = self.teacher_sources[key].prepare(self.cache_directory)
                if said:
                    done.append((lang, said))
        return done

    def _load_teachers_of(self, file_path: str) -> None:
        """Load the teachers of the languages of ``file_path`` not read before, and widen the label union."""
        new = [lang for lang in self._languages(file_path) if lang not in self._languages_read]
        if new:
            self._languages_read += new
            self._teacher_labels[:] = sorted(set().union(*(self.teacher(lang).labels for lang in self._languages_read)))

    @property
    def token_indexers(self):
        return getattr(self.base_reader, "token_indexers", None)

    @property
    def label_scheme(self) -> Optional[str]:
        """The span scheme of the student's labels (what the base reader writes), or None for plain tags."""
        return self.base_reader.label_scheme if isinstance(self.base_reader, StructKDReader) else None

    def _teacher_key(self, lang: str) -> Optional[str]:
        """The key of ``teachers`` whose teacher teaches ``lang`` (its own, else the default), or None."""
        return lang if lang in self.teacher_paths else self.default_teacher

    def teacher(self, lang: str) -> LoadedTeacher:
        key = self._teacher_key(lang)
        if key is None:
            raise ConfigurationError(
                f"no teacher for language {lang!r}: teachers are {sorted(self.teacher_paths)} and no default_teacher is set"
            )
        if key not in self._teachers:
            path = self.teacher_paths[key]
            if path not in self._by_path:
                loaded = self.teacher_sources[key].load(self.cuda_device, self.cache_directory, self.label_scheme)
                self._check_encoders(loaded)
                loaded.check_teaches(self.objective)
                self._by_path[path] = loaded
            self._teachers[key] = self._by_path[path]
        return self._teachers[key]

    def _check_encoders(self, teacher: LoadedTeacher) -> None:
        """A student that reads its teachers' word pieces (compressed from their encoder's embeddings) and a teacher over
        an encoder with another vocabulary: a clear error naming both encoders."""
        from allennlp_structkd.data.wordpiece_indexer import WordpieceIndexer, vocabulary_fingerprint

        students = [i.model_name for i in (self.token_indexers or {}).values() if isinstance(i, WordpieceIndexer)]
        teachers = teacher.encoder_folders()
        for student in students:
            for folder in teachers:
                if vocabulary_fingerprint(student) != vocabulary_fingerprint(folder):
                    raise ConfigurationError(
                        f"the student reads the word pieces of the encoder {student}, but teacher {teacher.archive_path} "
                        f"reads those of the encoder {folder}, another vocabulary: give the student its teacher's encoder "
                        "(STUDENT_ENCODER) or a teacher over the student's")

    # -- sharding is done once, by the base readers ---------------------------------------------
    def _set_worker_info(self, info) -> None:
        super()._set_worker_info(info)
        for reader in (self.base_reader, self.unlabeled_reader):
            pass_worker_info(reader, info)

    def _set_distributed_info(self, info) -> None:
        super()._set_distributed_info(info)
        for reader in (self.base_reader, self.unlabeled_reader):
            pass_distributed_info(reader, info)

    def apply_token_indexers(self, instance: Instance) -> None:
        self.base_reader.apply_token_indexers(instance)

    def _sources(self, file_path: str):
        spec = parse_json_path(file_path)
        if isinstance(spec, dict) and spec and set(spec) <= {"labeled", "unlabeled"}:
            sources = []
            for part, reader in (("labeled", self.base_reader), ("unlabeled", self.unlabeled_reader)):
                if part in spec:
                    value = spec[part]
                    sources.append((reader, json.dumps(value) if isinstance(value, dict) else value))
            return sources
        return [(self.base_reader, file_path)]

    # fields a labeled tagging instance may carry that words-only unlabeled text cannot give
    TEXT_LACKS = ("upos", "xpos")

    def _stream(self, file_path: str) -> Iterator[Instance]:
        """
        The instances of every source. Labeled and unlabeled instances are batched together, so they
        must have the same fields: with words-only unlabeled text, a labeled instance's PoS fields
        (which taggers do not read; its metadata keeps the tags) are dropped.
        """
        self._load_teachers_of(file_path)
        sources = self._sources(file_path)
        words_only = len(sources) > 1 and isinstance(self.unlabeled_reader, UnlabeledTextReader)

        def instances(reader, path):
            for instance in reader.read(path):
                if words_only and reader is self.base_reader:
                    for name in self.TEXT_LACKS:
                        instance.fields.pop(name, None)
                yield instance

        if self.mix_sources:
            streams = self._per_language(sources)
            if len(streams) > 1:
                yield from interleaved([instances(reader, path) for reader, path in streams],
                                       [float(max(1, _source_size(reader, path))) for reader, path in streams])
                return
        for reader, path in sources:
            yield from instances(reader, path)

    @staticmethod
    def _per_language(sources):
        """Each source split into one per language (and file), so that interleaving mixes the languages too: a
        ``{lang: path}`` map is otherwise read a language after the other, and a loader holding part of the data
        at a time would see one language (and, where one part's files run out first, one kind) for stretches of
        the epoch."""
        split = []
        for reader, path in sources:
            if not isinstance(reader, StructKDReader):  # a reader of ours reads {lang: path} maps; others get theirs
                split.append((reader, path))
                continue
            split.extend((reader, json.dumps({lang: file})) for lang, file in parse_path_map(path, reader.lang))
        return split

    def _read(self, file_path: str) -> Iterator[Instance]:
        stream = self._stream(file_path)
        if self.shuffle_buffer > 1:  # seeded by the run's seed (AllenNLP seeds random), anew each epoch's read
            stream = shuffled(stream, self.shuffle_buffer, random.Random(random.getrandbits(64)))
        while True:
            chunk = list(itertools.islice(stream, self.batch_size))
            if not chunk:
                break
            yield from self._annotate(chunk)
        for teacher in self._by_path.values():
            teacher.cache.checkpoint()
            logger.info("teacher %s: %d cached outputs used, %d computed", teacher.archive_path, teacher.cache.hits, teacher.cache.misses)
        self.check_teachers_fit_the_task()

    def check_teachers_fit_the_task(self) -> None:
        """
        Each teacher must label the student's task: most of the student's gold labels must be labels of
        the teacher (a teacher may lack a label, or know more than a small labeled part shows). Checked
        once the data is read (AllenNLP reads it whole for the vocabulary, before training); without gold
        labels (a student of unlabeled text only) there is nothing to compare with.
        """
        for key, path in self.teacher_paths.items():
            teacher = self._teachers.get(key) or self._by_path.get(path)
            if teacher is None:
                continue
            gold = self._gold_labels.get(teacher.namespace)
            if not gold:
                continue
            labels = set(teacher.labels)
            shared = labels & gold
            if 2 * len(shared) < len(gold):
                raise ConfigurationError(
                    f"teacher {path} (language {key!r}) labels sentences with {sorted(labels)[:8]}{'...' if len(labels) > 8 else ''}"
                    f": {len(shared)} of the {len(gold)} labels of the student's gold data "
                    f"({sorted(gold)[:8]}{'...' if len(gold) > 8 else ''}) are among them. A teacher must be trained for the "
                    "student's task")

    def annotate_shard(self, file_path: str, shard: int = 0, num_shards: int = 1, progress: bool = False) -> int:
        """
        Fill the cache for every ``num_shards``-th sentence of ``file_path``, starting at ``shard``
        (what ``python -m allennlp_structkd.annotate`` runs in each worker). Returns the number of
        sentences of the shard.
        """
        from tqdm import tqdm

        stream = itertools.islice(self._stream(file_path), shard, None, num_shards)
        done = 0
        bar = tqdm(desc=f"annotating shard {shard + 1}/{num_shards}", unit=" sentences", position=shard, disable=not progress)
        while True:
            chunk = list(itertools.islice(stream, self.batch_size))
            if not chunk:
                break
            for _ in self._annotate(chunk, cache_required=True):
                pass
            done += len(chunk)
            bar.update(len(chunk))
        bar.close()
        for teacher in self._by_path.values():
            teacher.cache.close()  # folds the write-ahead log into the cache file
        return done

    def loaded_teachers(self) -> List[LoadedTeacher]:
        """The teachers loaded so far, each once."""
        return list(self._by_path.values())

    def shared_key(self) -> str:
        """The cache key of what every sentence's targets share (a chain's transitions), kept once a teacher."""
        return LoadedTeacher.shared_key(self.objective)

    def teacher_groups(self, instances: List[Instance]) -> List[Tuple[LoadedTeacher, List[int], List[str]]]:
        """Per teacher (in the order first met), the positions of its sentences in ``instances`` and their cache keys
        (:meth:`LoadedTeacher.cache_key`)."""
        groups: Dict[int, Tuple[LoadedTeacher, List[int], List[str]]] = {}
        for i, instance in enumerate(instances):
            teacher = self.teacher(_metadata(instance)["lang"])
            _, indices, keys = groups.setdefault(id(teacher), (teacher, [], []))
            indices.append(i)
            keys.append(teacher.cache_key(self.objective, _metadata(instance)))
        return list(groups.values())

    def stream(self, file_path: str) -> Iterator[Instance]:
        """The instances of ``file_path`` as read, before any teacher sees them (what annotation engines shard)."""
        return self._stream(file_path)

    def _annotate(self, instances: List[Instance], cache_required: bool = False) -> Iterable[Instance]:
        """Attach each instance's teacher targets, from the cache or computed and stored; ``cache_required``: a cache
        that cannot store them is an error (``annotate``), not a note in the log."""
        entries: List[Optional[Dict[str, np.ndarray]]] = [None] * len(instances)
        for teacher, indices, _ in self.teacher_groups(instances):
            found, computed = teacher.annotate_cached([_metadata(instances[i]) for i in indices], self.objective, cache_required)
            self.teacher_calls += computed
            for i, targets in zip(indices, found):
                entries[i] = targets
        for instance, entry in zip(instances, entries):
            assert entry is not None  # every instance is in one teacher's group
            yield self._attach(instance, entry)

    @staticmethod
    def _relpos_labels(entry: Dict[str, np.ndarray], teacher, metadata: Dict) -> List[str]:
        """A parser teacher's best tree as the sequence-labeling parser's labels (relative PoS, then ``@deprel``)."""
        from allennlp_structkd.structures import rel_pos

        upos = metadata.get("upos")
        if upos is None:
            raise ConfigurationError(f"{metadata.get('file')}, line {metadata.get('line')}: relative-PoS pseudo labels "
                                     "need the sentence's PoS tags: read unlabeled parsing data with its UPOS column")
        labels = rel_pos.encode([int(h) for h in entry["pseudo_heads"]], upos)
        if teacher.labels:  # a teacher with deprels: the student's labels join them
            labels = [f"{label}@{teacher.labels[int(r)]}" for label, r in zip(labels, entry["pseudo_deprels"])]
        return labels

    def _attach(self, instance: Instance, entry: Dict[str, np.ndarray]) -> Instance:
        metadata = _metadata(instance)
        teacher = self.teacher(metadata["lang"])
        has_gold = "tags" in instance.fields
        for field in instance.fields.values():  # gold labels of the teachers' label namespace
            if isinstance(field, SequenceLabelField) and label_namespace(field) == teacher.namespace and has_gold:
                self._gold_labels.setdefault(teacher.namespace, set()).update(field.labels)
                unknown = sorted(str(label) for label in set(field.labels) - set(self.teacher_labels))
                if unknown:
                    raise ConfigurationError(
                        f"{metadata.get('file')}, line {metadata.get('line')}: gold labels {unknown} are labels of no teacher "
                        f"(the teachers have {self.teacher_labels}; a Hugging Face teacher's labels can be renamed with "
                        "its label_mapping)"
                    )
        if not has_gold:
            if "pseudo_tags" in entry:
                pseudo = [teacher.labels[int(t)] for t in entry["pseudo_tags"]]
                instance.add_field("tags", SequenceLabelField(pseudo, _tokens(instance), label_namespace=teacher.namespace))
            elif "pseudo_heads" in entry:
                tokens = _tokens(instance)
                instance.add_field("tags", SequenceLabelField(self._relpos_labels(entry, teacher, metadata), tokens))
                # the fields of a labeled parsing instance, so that both kinds batch together (has_gold
                # keeps these out of the gold loss; parsers score trees at evaluation only)
                instance.add_field("head_indices", SequenceLabelField([int(h) for h in entry["pseudo_heads"]], tokens,
                                                                      label_namespace="head_index_tags"))
                if teacher.labels:
                    instance.add_field("head_tags", SequenceLabelField(
                        [teacher.labels[int(r)] for r in entry["pseudo_deprels"]], tokens, label_namespace="head_tags"))
            else:
                raise ConfigurationError(
                    f"teacher {teacher.archive_path} gives no labels in the student's label space, so it cannot label "
                    f"unlabeled sentences ({metadata.get('file')}, line {metadata.get('line')}); a parser teacher does "
                    "with the top1 objective"
                )
        targets = {name: value for name, value in entry.items() if not spec_of(name).pseudo}
        instance.add_field("teacher_targets", TeacherTargetsField(targets, teacher.labels, self.teacher_labels, teacher.namespace))
        instance.add_field("has_gold", TensorField(torch.tensor(1 if has_gold else 0, dtype=torch.long)))
        return instance
