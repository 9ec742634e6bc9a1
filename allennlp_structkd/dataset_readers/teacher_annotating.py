"""
The teacher-wrapping reader: any base reader's instances, annotated with what a KD objective
needs from the teacher of each sentence's language, computed once and cached on disk.
"""
import hashlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zlib
from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from filelock import FileLock
from allennlp.data import Batch, DatasetReader, Field, Instance, Vocabulary
from allennlp.data.fields import SequenceLabelField, TensorField, TextField
from allennlp.data.tokenizers import Token
from allennlp.models.archival import load_archive
from allennlp.nn import util as nn_util

from allennlp_structkd.config_defaults import ext_vars
from allennlp_structkd.dataset_readers.common import parse_json_path
from allennlp_structkd.dataset_readers.unlabeled_text import UnlabeledTextReader
from allennlp_structkd.kd.cache import TeacherCache, default_cache_directory, file_sha256
from allennlp_structkd.kd.losses import LABEL_DIMS, KDLoss, check_label_sets
from allennlp_structkd.settings import reject_unknown_settings

logger = logging.getLogger(__name__)

# per target (without the batch dimension): the dimensions that run over the words, each with how
# many positions it has beyond the words (a parser's head dimension also has the root)
WORD_DIMS = {
    "teacher_unary": [(0, 0)],
    "teacher_pairwise": [(0, 0)],
    "teacher_probs": [(0, 0)],
    "teacher_kbest_tags": [(1, 0)],
    "teacher_kbest_weights": [],
    "teacher_head_probs": [(0, 0), (1, 1)],
    "teacher_deprel_probs": [(0, 0)],
    "teacher_logits": [(0, 0)],
    "teacher_hidden": [(0, 0)],
    "pseudo_tags": [(0, 0)],
    "pseudo_heads": [(0, 0)],
    "pseudo_deprels": [(0, 0)],
}
# what a reader turns into placeholder labels; never a KD target
PSEUDO = ("pseudo_tags", "pseudo_heads", "pseudo_deprels")


def trim_to_length(name: str, value: torch.Tensor, length: int) -> torch.Tensor:
    """One sentence's target without the batch's padding."""
    for dim, extra in WORD_DIMS.get(name, []):
        value = value.narrow(dim, 0, length + extra)
    return value


class TeacherTargetsField(Field[Dict[str, torch.Tensor]]):
    """
    What a teacher computed for one sentence (``teacher_unary``, ``teacher_pairwise``, ...), in the
    teacher's label order until indexing (then in the student's), plus the teacher's labels *by string*.

    * Counting vocabulary items adds the teacher's labels to the student's label namespace, so a
      student trained only on unlabeled data still has every label.
    * Indexing moves every target into the student's label order, once per instance rather than
      once per batch: labels of the student that this teacher lacks get probability 0. A student
      vocabulary that lacks a teacher label, or has a label no teacher has, is a clear error naming
      the labels (:func:`~allennlp_structkd.kd.losses.check_label_sets`).
    * Batching pads the token dimension and gives the model a dict of tensors.
    """

    __slots__ = ["targets", "labels", "all_teacher_labels", "namespace", "_indexed"]

    def __init__(self, targets: Dict[str, np.ndarray], labels: List[str], all_teacher_labels: List[str],
                 namespace: str = "labels") -> None:
        self.targets = targets
        self.labels = list(labels)
        self.all_teacher_labels = all_teacher_labels
        self.namespace = namespace
        self._indexed: Optional[bool] = None  # True once the targets are in the student's label order

    def count_vocab_items(self, counter: Dict[str, Dict[str, int]]) -> None:
        for label in self.labels:
            counter[self.namespace][label] += 1

    def index(self, vocab: Vocabulary) -> None:
        if self._indexed is not None:
            return
        known = vocab.get_token_to_index_vocabulary(self.namespace)
        check_label_sets(list(known), self.all_teacher_labels)
        label_map = np.array([known[label] for label in self.labels], dtype=np.int64)
        # the teacher-order arrays are replaced, not kept beside: pair marginals are large
        self.targets = {name: _to_student_order(name, value, label_map, len(known)) for name, value in self.targets.items()}
        self._indexed = True

    def get_padding_lengths(self) -> Dict[str, int]:
        lengths = {}
        for name, value in self.targets.items():
            for dim, extra in WORD_DIMS.get(name, []):
                lengths["num_tokens"] = value.shape[dim] - extra
        return lengths

    def as_tensor(self, padding_lengths: Dict[str, int]) -> Dict[str, torch.Tensor]:
        if self._indexed is None:
            raise ConfigurationError("TeacherTargetsField used before indexing")
        tensors = {}
        for name, value in self.targets.items():
            tensor = torch.from_numpy(value)
            pad = [0, 0] * tensor.dim()
            for dim, extra in WORD_DIMS.get(name, []):
                missing = padding_lengths.get("num_tokens", 0) + extra - tensor.size(dim)
                pad[2 * (tensor.dim() - 1 - dim) + 1] = max(missing, 0)
            tensors[name] = torch.nn.functional.pad(tensor, pad) if any(pad) else tensor
        return tensors

    def batch_tensors(self, tensor_list: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:  # type: ignore[override]
        return {name: torch.stack([t[name] for t in tensor_list]) for name in tensor_list[0]}

    def empty_field(self) -> "TeacherTargetsField":
        return TeacherTargetsField({}, [], self.all_teacher_labels, self.namespace)

    def __len__(self) -> int:
        return len(self.targets)


def _to_student_order(name: str, value: np.ndarray, label_map: np.ndarray, num_student: int) -> np.ndarray:
    """One target from teacher label order (``label_map[j]`` = student index of teacher label j)."""
    dims = LABEL_DIMS.get(name, ())
    if dims == "values":
        return label_map[value]
    for dim in dims:  # dims are counted with a batch dimension in LABEL_DIMS
        axis = dim - 1
        shape = list(value.shape)
        shape[axis] = num_student
        moved = np.zeros(shape, dtype=value.dtype)
        index = [slice(None)] * value.ndim
        index[axis] = label_map
        moved[tuple(index)] = value
        value = moved
    return np.ascontiguousarray(value)


def _referenced_files(value) -> set:
    """Existing files named in a config (plain paths, or JSON {lang: path} strings)."""
    if isinstance(value, dict):
        return set().union(*(_referenced_files(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_referenced_files(v) for v in value)) if value else set()
    if isinstance(value, str):
        if value.strip().startswith("{"):
            try:
                return _referenced_files(json.loads(value))
            except json.JSONDecodeError:
                return set()
        return {value} if os.path.isfile(value) else set()
    return set()


def ensure_teacher_archive(path: str, cache_directory: str) -> str:
    """
    ``path`` itself when it is a model archive; when it is a training config (``.jsonnet`` /
    ``.json``), the archive of that config trained once with ``allennlp train`` in a subprocess and
    kept under ``cache_directory/teachers/<hash of the evaluated config>`` (a file lock keeps
    concurrent runs from training it twice).
    """
    if not path.endswith((".jsonnet", ".json")):
        if os.path.isdir(path):
            inside = os.path.join(path, "model.tar.gz")
            if os.path.isfile(inside):  # a serialization directory: its archive
                return inside
            raise ConfigurationError(f"teacher {path} is a directory without model.tar.gz: give the model archive "
                                     "that `allennlp train` wrote, or a teacher training config")
        if not os.path.isfile(path):
            raise ConfigurationError(f"teacher archive not found: {path}")
        return path
    if not os.path.isfile(path):
        raise ConfigurationError(f"teacher config not found: {path}")
    params = Params.from_file(path, ext_vars=ext_vars()).as_dict(quiet=True)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode("utf-8"))
    for data_file in sorted(_referenced_files(params)):  # new data means a new teacher
        digest.update(file_sha256(data_file).encode("ascii"))
    digest = digest.hexdigest()[:16]
    name = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.join(cache_directory, "teachers", f"{name}-{digest}")
    archive = os.path.join(directory, "model.tar.gz")
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    with FileLock(directory + ".lock"):
        if not os.path.isfile(archive):
            if os.path.isdir(directory):
                shutil.rmtree(directory)  # an earlier, interrupted training
            logger.info("training teacher %s into %s (once; later runs reuse it)", path, directory)
            command = [sys.executable, "-m", "allennlp", "train", path, "-s", directory,
                       "--include-package", "allennlp_structkd"]
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0 or not os.path.isfile(archive):
                raise ConfigurationError(
                    f"training the teacher from {path} failed (exit {result.returncode}); last output:\n{result.stdout[-3000:]}"
                )
    return archive


class _Teacher:
    def __init__(self, archive_path: str, cuda_device: int, cache_directory: str) -> None:
        archive_path = ensure_teacher_archive(archive_path, cache_directory)
        self.archive_path = archive_path
        self.hash = file_sha256(archive_path)
        try:
            archive = load_archive(archive_path, cuda_device=cuda_device)
        except (tarfile.ReadError, EOFError, zlib.error) as error:
            raise ConfigurationError(f"teacher {archive_path} is not a model archive ({error}): give the model.tar.gz "
                                     "that `allennlp train` wrote, or a teacher training config (.jsonnet)") from error
        self.model = archive.model
        self.model.eval()
        if not hasattr(self.model, "teacher_outputs"):
            raise ConfigurationError(f"the model in {archive_path} ({type(self.model).__name__}) cannot act as a teacher: no teacher_outputs()")
        self.labels: List[str] = list(self.model.labels)
        self.namespace = self.model.label_namespace
        self.indexers = archive.dataset_reader.token_indexers  # type: ignore[attr-defined]
        self.needs_pos = getattr(self.model, "pos_tag_embedding", None) is not None
        self.cache = TeacherCache(cache_directory, self.hash)
        self.cuda_device = cuda_device

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
            key += "|upos=" + hashlib.sha1("\x1f".join(upos).encode("utf-8")).hexdigest()[:16]
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
        return results

    def _annotate_batch(self, sentences: List[Dict], objective: KDLoss) -> List[Dict[str, np.ndarray]]:
        words = [meta["words"] for meta in sentences]
        instances = []
        for meta in sentences:
            fields = {"tokens": TextField([Token(w) for w in meta["words"]], self.indexers)}
            if meta.get("upos") is not None:  # parsers that embed PoS need it
                fields["upos"] = SequenceLabelField(meta["upos"], fields["tokens"], label_namespace="pos")
            instances.append(Instance(fields))
        if self.needs_pos and any("upos" not in inst.fields for inst in instances):
            raise ConfigurationError(f"teacher {self.archive_path} embeds PoS tags: read the student's data with UPOS")
        if not self.needs_pos:
            for inst in instances:
                inst.fields.pop("upos", None)
        batch = Batch(instances)
        batch.index_instances(self.model.vocab)
        tensors = nn_util.move_to_device(batch.as_tensor_dict(), self.cuda_device)
        with torch.no_grad():
            targets, pseudo, mask = self.model.teacher_outputs(objective, **tensors)
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


@DatasetReader.register("structkd_teacher")
class TeacherAnnotatingReader(DatasetReader):
    """
    Wraps ``base_reader``; sends each instance to the teacher of its ``metadata["lang"]``
    (``teachers`` maps languages to model archives, or to teacher training configs that are trained
    once and cached, see :func:`ensure_teacher_archive`; ``default_teacher``, a key of ``teachers``,
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
    """

    def __init__(
        self,
        base_reader: DatasetReader,
        teachers: Dict[str, str],
        objective: KDLoss,
        default_teacher: Optional[str] = None,
        unlabeled_reader: Optional[DatasetReader] = None,
        cache_directory: Optional[str] = None,
        batch_size: int = 64,
        cuda_device: Optional[int] = None,
        **kwargs,
    ) -> None:
        reject_unknown_settings(self, DatasetReader, kwargs)
        super().__init__(manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs)
        if not teachers:
            raise ConfigurationError("structkd_teacher needs at least one teacher archive")
        if default_teacher is not None and default_teacher not in teachers:
            raise ConfigurationError(f"default_teacher {default_teacher!r} is not one of the teachers {sorted(teachers)}")
        self.base_reader = base_reader
        self.unlabeled_reader = unlabeled_reader or UnlabeledTextReader(token_indexers=getattr(base_reader, "token_indexers", None))
        self.teacher_paths = dict(teachers)
        self.default_teacher = default_teacher
        self.objective = objective
        self.cache_directory = cache_directory or default_cache_directory()
        self.batch_size = batch_size
        # None: the first GPU when torch sees one, else the CPU (as AllenNLP's trainer chooses)
        self.cuda_device = cuda_device if cuda_device is not None else (0 if torch.cuda.is_available() else -1)
        self._teachers: Dict[str, _Teacher] = {}
        self._by_path: Dict[str, _Teacher] = {}
        self.teacher_calls = 0  # sentences the teachers actually annotated (cache misses)
        # Teachers load now, so that a bad archive fails at start-up. Their label sets may differ
        # (a label one language's training data lacks): the student's labels are their union, and a
        # teacher gives probability 0 to a label it lacks.
        self.teacher_labels = sorted(set().union(*(self.teacher(lang).labels for lang in self.teacher_paths)))

    @property
    def token_indexers(self):
        return getattr(self.base_reader, "token_indexers", None)

    def teacher(self, lang: str) -> _Teacher:
        key = lang if lang in self.teacher_paths else self.default_teacher
        if key is None:
            raise ConfigurationError(
                f"no teacher for language {lang!r}: teachers are {sorted(self.teacher_paths)} and no default_teacher is set"
            )
        if key not in self._teachers:
            path = self.teacher_paths[key]
            if path not in self._by_path:
                self._by_path[path] = _Teacher(path, self.cuda_device, self.cache_directory)
            self._teachers[key] = self._by_path[path]
        return self._teachers[key]

    # -- sharding is done once, by the base readers ---------------------------------------------
    def _set_worker_info(self, info) -> None:
        super()._set_worker_info(info)
        for reader in (self.base_reader, self.unlabeled_reader):
            reader._set_worker_info(info)

    def _set_distributed_info(self, info) -> None:
        super()._set_distributed_info(info)
        for reader in (self.base_reader, self.unlabeled_reader):
            reader._set_distributed_info(info)

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
        sources = self._sources(file_path)
        words_only = len(sources) > 1 and isinstance(self.unlabeled_reader, UnlabeledTextReader)
        for reader, path in sources:
            for instance in reader.read(path):
                if words_only and reader is self.base_reader:
                    for name in self.TEXT_LACKS:
                        instance.fields.pop(name, None)
                yield instance

    def _read(self, file_path: str) -> Iterator[Instance]:
        stream = self._stream(file_path)
        while True:
            chunk = list(itertools.islice(stream, self.batch_size))
            if not chunk:
                break
            yield from self._annotate(chunk)
        for teacher in self._by_path.values():
            logger.info("teacher %s: %d cached outputs used, %d computed", teacher.archive_path, teacher.cache.hits, teacher.cache.misses)

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
            for _ in self._annotate(chunk):
                pass
            done += len(chunk)
            bar.update(len(chunk))
        bar.close()
        return done

    def _annotate(self, instances: List[Instance]) -> Iterable[Instance]:
        signature = self.objective.signature()
        entries: List[Optional[Dict[str, np.ndarray]]] = [None] * len(instances)
        by_teacher: Dict[int, List[int]] = {}
        for i, instance in enumerate(instances):
            by_teacher.setdefault(id(self.teacher(instance["metadata"]["lang"])), []).append(i)
        for indices in by_teacher.values():
            teacher = self.teacher(instances[indices[0]]["metadata"]["lang"])
            keys = [f"{signature}|{teacher.input_key(instances[i]['metadata'].metadata)}" for i in indices]
            found = teacher.cache.get_many(keys)
            missing = [(i, key) for i, key in zip(indices, keys) if key not in found]
            if missing:
                computed = teacher.annotate([instances[i]["metadata"].metadata for i, _ in missing], self.objective)
                self.teacher_calls += len(missing)
                teacher.cache.put_many(zip((key for _, key in missing), computed))
                found.update(zip((key for _, key in missing), computed))
            for i, key in zip(indices, keys):
                entries[i] = found[key]
        for instance, entry in zip(instances, entries):
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
        metadata = instance["metadata"].metadata
        teacher = self.teacher(metadata["lang"])
        has_gold = "tags" in instance.fields
        for field in instance.fields.values():  # gold labels of the teachers' label namespace
            if isinstance(field, SequenceLabelField) and field._label_namespace == teacher.namespace:
                unknown = sorted(set(field.labels) - set(self.teacher_labels))
                if unknown:
                    raise ConfigurationError(
                        f"{metadata.get('file')}, line {metadata.get('line')}: gold labels {unknown} are labels of no teacher "
                        f"(the teachers have {self.teacher_labels})"
                    )
        if not has_gold:
            if "pseudo_tags" in entry:
                pseudo = [teacher.labels[int(t)] for t in entry["pseudo_tags"]]
                instance.add_field("tags", SequenceLabelField(pseudo, instance["tokens"], label_namespace=teacher.namespace))
            elif "pseudo_heads" in entry:
                tokens = instance["tokens"]
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
        targets = {name: value for name, value in entry.items() if name not in PSEUDO}
        instance.add_field("teacher_targets", TeacherTargetsField(targets, teacher.labels, self.teacher_labels, teacher.namespace))
        instance.add_field("has_gold", TensorField(torch.tensor(1 if has_gold else 0, dtype=torch.long)))
        return instance
