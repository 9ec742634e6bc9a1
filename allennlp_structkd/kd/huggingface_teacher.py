"""
A fine-tuned Hugging Face token classifier as a teacher: a local folder as ``save_pretrained``
writes it (``config.json`` with ``id2label``, a fast tokenizer, the weights), no AllenNLP archive.

    teachers: {es: "/models/my-ner-model"}                                   # recognised by config.json
    teachers: {es: {type: "huggingface", model: "/models/my-ner-model",
                    label_mapping: {"B-PERSON": "B-PER", "I-PERSON": "I-PER"}}}

**Word distributions.** A word's distribution over the teacher's labels is the softmax of the
logits at its *first* word piece (how token classifiers are fine-tuned: the other pieces are
ignored, label -100). Sentences are batched by length and run under ``torch.no_grad()`` on the
reader's device. A sentence longer than the model's positions is covered by overlapping windows
(half a window apart), never truncated; each word takes its distribution from the window in which
it is farthest from an edge, and a sentence that fits is one window, the same as one pass.

**Labels.** ``id2label`` (renamed by ``label_mapping`` first) is mapped into the student's label
space: for a student of a span scheme (the reader's output scheme, BIOES or BIO), the teacher's
labels may be IOB2/BIO, IOB1-free BIOES or BIOUL, read by entity type; for plain tags (UPOS) the
names are the labels. A label the student's gold data has and the teacher lacks is an error that
names both sets (the reader's check).

**What it teaches.** Its distribution over the student's label sequences is the teacher's own,
restricted to the sequences the student's scheme allows: a linear chain whose emissions are the
teacher's log-probabilities (for an IOB2 teacher and a BIOES student, ``E-X`` reads ``I-X`` and
``S-X`` reads ``B-X``) and whose transitions only forbid. So its unary and pair marginals (Case 2a,
Case 3 structural KD, Posterior KD) and its best sequence (Top-1) put no mass on a transition the
student's scheme forbids. Token KD, Top-K and the other objectives that read a teacher's scores
are taught when the teacher's labels are the student's one to one (the chain's emissions are then
the teacher's own log-probabilities); for an IOB2 teacher of a BIOES student they are refused by
name. For plain tags the distribution is the per-token softmax (a MaxEnt teacher).

**Cache.** Keyed by the content of every file of the folder, the label mapping and the student's
scheme: a changed folder is a new cache, never stale targets.
"""
import hashlib
import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.kd.cache import TeacherCache, file_sha256
from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.protocol import check_recipe
from allennlp_structkd.kd.targets import POTENTIALS, trim_to_length
from allennlp_structkd.kd.teacher import LoadedTeacher
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher
from allennlp_structkd.structures.potentials import ChainPotentials, Constraints, Potentials, TokenPotentials

logger = logging.getLogger(__name__)

SPAN_SCHEMES = ("BIOES", "BIO")


def is_huggingface_folder(path: str) -> bool:
    """A local Hugging Face model folder (``config.json``), not an AllenNLP training folder (``model.tar.gz``)."""
    return (os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json"))
            and not os.path.isfile(os.path.join(path, "model.tar.gz")))


def _split(label: str) -> Tuple[str, str]:
    """``(prefix, type)`` of a span label, BIOUL's U/L read as S/E; ``("O", "")`` for O."""
    if label == "O":
        return "O", ""
    prefix = {"U": "S", "L": "E"}.get(label[0], label[0])
    return prefix, label[2:]


class LabelMapping:
    """
    The teacher's labels (``id2label`` order, renamed) and the student's label space they are mapped into:
    ``labels`` (the student's labels this teacher covers) and, for each, the teacher labels whose probability it
    takes (``sources[k]``: teacher label ids). ``one_to_one``: each teacher label serves one student label.

    # Parameters

    teacher_labels : `Sequence[str]`
        ``id2label`` in id order, ``label_mapping`` applied.
    scheme : `Optional[str]`
        The student's span scheme (``BIOES`` or ``BIO``), or None for plain tags.
    where : `str`
        The teacher's folder, for errors.
    """

    def __init__(self, teacher_labels: Sequence[str], scheme: Optional[str], where: str) -> None:
        self.teacher_labels = list(teacher_labels)
        index = {label: i for i, label in enumerate(self.teacher_labels)}
        if len(index) != len(self.teacher_labels):
            raise ConfigurationError(f"teacher {where}: id2label names a label twice (after label_mapping): "
                                     f"{self.teacher_labels}")
        spans = [label for label in self.teacher_labels if label != "O"]
        is_span = bool(spans) and all(len(label) > 2 and label[1] == "-" and label[0] in "BIESUL" for label in spans)
        if scheme is None:
            if is_span and "O" in index:
                raise ConfigurationError(
                    f"teacher {where} labels spans ({_listed(self.teacher_labels)}), but the student reads plain tags "
                    "(no span scheme): give a teacher of the student's task, or read the data as NER")
            self.scheme, self.labels = None, list(self.teacher_labels)
            self.sources = [[i] for i in range(len(self.labels))]
            self.one_to_one = True
            return
        if scheme not in SPAN_SCHEMES:
            raise ConfigurationError(f"teacher {where}: the student's scheme {scheme!r} is not one of {SPAN_SCHEMES}")
        if not is_span or "O" not in index:
            raise ConfigurationError(
                f"teacher {where} has labels {_listed(self.teacher_labels)}, which are not those of a span scheme with "
                f"O (B-X, I-X, ...), but the student tags spans in {scheme}: give a teacher of the student's task, or map "
                "its labels with label_mapping")
        prefixes = {_split(label)[0] for label in spans}
        teacher_bioes = bool(prefixes & {"E", "S"})
        if scheme == "BIO" and teacher_bioes:
            raise ConfigurationError(f"teacher {where} tags in BIOES/BIOUL ({_listed(self.teacher_labels)}) and the student "
                                     "in BIO: read the student's data with output_scheme BIOES")
        types = sorted({_split(label)[1] for label in spans})
        by_name = {_split(label): i for i, label in enumerate(self.teacher_labels)}
        # the teacher prefix a student prefix reads: the same one, or for an IOB2 teacher E -> I and S -> B
        reads = {"B": "B", "I": "I", "E": "E", "S": "S"} if teacher_bioes else {"B": "B", "I": "I", "E": "I", "S": "B"}
        student_prefixes = ("B", "I", "E", "S") if scheme == "BIOES" else ("B", "I")
        self.scheme = scheme
        self.labels, self.sources = ["O"], [[index["O"]]]
        for kind in types:
            for prefix in student_prefixes:
                source = by_name.get((reads[prefix], kind))
                if source is not None:
                    self.labels.append(f"{prefix}-{kind}")
                    self.sources.append([source])
        served = [s for sources in self.sources for s in sources]
        self.one_to_one = len(served) == len(set(served)) == len(self.teacher_labels)

    def allowed(self) -> Constraints:
        """The student scheme's allowed transitions over :attr:`labels` (AllenNLP's tables, as the CRF tagger's)."""
        from allennlp.modules.conditional_random_field import allowed_transitions

        encoding = "BIOUL" if self.scheme == "BIOES" else "BIO"
        as_allennlp = {i: ({"S": "U", "E": "L"}.get(label[0], label[0]) + label[1:] if label != "O" else label)
                       for i, label in enumerate(self.labels)}
        n = len(self.labels)
        table = torch.zeros(n + 2, n + 2, dtype=torch.bool)
        for i, j in allowed_transitions(encoding, as_allennlp):
            table[i, j] = True
        return Constraints(table[:n, :n].clone(), table[n, :n].clone(), table[:n, n + 1].clone())

    def student_log_probs(self, teacher_log_probs: torch.Tensor) -> torch.Tensor:
        """``(..., len(teacher_labels))`` teacher log-probabilities -> ``(..., len(labels))`` (a label that reads several
        teacher labels takes their summed probability)."""
        columns = [teacher_log_probs[..., sources].logsumexp(-1) for sources in self.sources]
        return torch.stack(columns, dim=-1)


def _listed(labels: Sequence[str], most: int = 12) -> str:
    return ", ".join(labels[:most]) + (", ..." if len(labels) > most else "")


def read_id2label(folder: str) -> List[str]:
    """``config.json``'s ``id2label`` in id order; a clear error for a folder that is no token classifier."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigurationError(f"teacher {folder}: {path} cannot be read ({error})") from None
    architectures = config.get("architectures") or []
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label or (
            architectures and not any(str(a).endswith("ForTokenClassification") for a in architectures)):
        raise ConfigurationError(
            f"teacher {folder} is not a token classifier: its config.json has "
            + (f"architectures {architectures}" if architectures else "no architectures")
            + (f" and id2label {dict(list(id2label.items())[:4])}" if isinstance(id2label, dict) and id2label else
               " and no id2label")
            + "; give a folder saved from an AutoModelForTokenClassification fine-tuned on the task (its labels in "
              "id2label), as transformers' save_pretrained writes it")
    try:
        ids = sorted(int(i) for i in id2label)
    except ValueError:
        raise ConfigurationError(f"teacher {folder}: id2label's keys must be label ids, got {sorted(id2label)[:5]}") from None
    if ids != list(range(len(ids))):
        raise ConfigurationError(f"teacher {folder}: id2label's ids must be 0..{len(ids) - 1}, got {ids[:10]}")
    return [str(id2label[str(i)] if str(i) in id2label else id2label[i]) for i in ids]


def folder_fingerprint(folder: str, extra: object) -> str:
    """SHA-256 over every file of ``folder`` (names and contents) and ``extra`` (JSON): the cache's name."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            digest.update(name.encode("utf-8") + b"\0" + file_sha256(path).encode("ascii"))
    digest.update(json.dumps(extra, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def windows(piece_counts: Sequence[int], budget: int) -> List[Tuple[int, int]]:
    """``[(first word, end word)]`` covering every word with windows of at most ``budget`` pieces (a word's pieces are
    at most ``budget``), each starting half a window after the previous one; one window when everything fits."""
    n, found, start = len(piece_counts), [], 0
    while start < n:
        end, total = start, 0
        while end < n and total + piece_counts[end] <= budget:
            total += piece_counts[end]
            end += 1
        end = max(end, start + 1)
        found.append((start, end))
        if end >= n:
            break
        start = max(start + 1, start + (end - start) // 2)
    return found


def best_window(position: int, spans: Sequence[Tuple[int, int]]) -> int:
    """The window in which word ``position`` is farthest from an edge (the first of equals)."""
    margins = [min(position - s, e - 1 - position) if s <= position < e else -1 for s, e in spans]
    return int(np.argmax(margins))


class HuggingFaceTeacher(LoadedTeacher):
    """
    See the module docstring.

    # Parameters

    folder : `str`
        The token classifier's folder.
    cuda_device : `int`
        -1 for the CPU, else a GPU index.
    cache_directory : `str`
        Where its outputs are cached.
    scheme : `Optional[str]`
        The student's span scheme (``BIOES``/``BIO``) or None for plain tags.
    label_mapping : `Optional[Dict[str, str]]`
        Teacher label -> the label name it stands for (applied to ``id2label`` first).
    max_length : `Optional[int]`
        Word pieces a window holds, special tokens included (default: what the model's positions allow).
    batch_pieces : `int`
        Word pieces per forward pass (windows are batched by length up to it).
    """

    def __init__(self, folder: str, cuda_device: int, cache_directory: str, scheme: Optional[str] = None,
                 label_mapping: Optional[Dict[str, str]] = None, max_length: Optional[int] = None,
                 batch_pieces: int = 8192) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        if not os.path.isdir(folder):
            raise ConfigurationError(f"teacher folder not found: {folder}")
        self.source = self.archive_path = folder
        mapping = dict(label_mapping or {})
        own_labels = read_id2label(folder)
        teacher_labels = [mapping.get(label, label) for label in own_labels]
        unknown = sorted(set(mapping) - set(own_labels))
        if unknown:
            raise ConfigurationError(f"teacher {folder}: label_mapping renames {unknown}, which are not labels of its "
                                     f"id2label ({_listed(own_labels)})")
        self.mapping = LabelMapping(teacher_labels, scheme, folder)
        self.labels = self.mapping.labels
        self.namespace = "labels"
        self.needs_pos = False
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
        except (OSError, ValueError, TypeError) as error:
            raise ConfigurationError(f"teacher {folder} has no tokenizer transformers can load ({error}): save the "
                                     "tokenizer with the model (tokenizer.save_pretrained(folder))") from None
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigurationError(f"teacher {folder}: its tokenizer is a slow (Python) one, which cannot say which word a "
                                     "piece belongs to; save a fast tokenizer (tokenizer.json) with the model")
        try:
            self.model = AutoModelForTokenClassification.from_pretrained(folder)
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"teacher {folder}: its weights cannot be loaded as a token classifier ({error})") from None
        if self.model.config.num_labels != len(teacher_labels):
            raise ConfigurationError(f"teacher {folder}: the classifier has {self.model.config.num_labels} outputs and "
                                     f"id2label {len(teacher_labels)} labels")
        from allennlp_structkd.archives import check_finite

        check_finite(self.model.named_parameters(), f"teacher {folder}")
        self.model.eval()
        self.device = torch.device("cpu" if cuda_device < 0 else f"cuda:{cuda_device}")
        self.model.to(self.device)
        specials = self.tokenizer.num_special_tokens_to_add(pair=False)
        positions = getattr(self.model.config, "max_position_embeddings", None) or 512
        limit = self.tokenizer.model_max_length if 0 < self.tokenizer.model_max_length < 1_000_000 else positions
        self.max_length = min(max_length or min(limit, positions), positions)
        self.budget = self.max_length - specials
        if self.budget < 1:
            raise ConfigurationError(f"teacher {folder}: max_length {self.max_length} leaves no room for word pieces")
        self.batch_pieces = batch_pieces
        self.constraints = self.mapping.allowed() if self.mapping.scheme else None
        self.hash = folder_fingerprint(folder, {"label_mapping": mapping, "scheme": scheme, "pieces": "first",
                                                "max_length": self.max_length})
        self.cache = TeacherCache(cache_directory, self.hash)
        self.indexers: Dict = {}

    # -- the teacher's protocol ----------------------------------------------------------------
    @property
    def recipes(self) -> frozenset:
        """Every recipe when its labels are the student's one to one; else its marginals and best sequence."""
        gives = SequenceTeacher.gives()
        return gives if self.mapping.one_to_one else gives - {POTENTIALS}

    def check_teaches(self, objective: KDLoss) -> None:
        check_recipe(f"Hugging Face token classifier ({self.source})", self.recipes, objective,
                     "" if self.mapping.one_to_one else
                     f" ({POTENTIALS}: its {self.mapping.scheme} labels read several of its labels each, so it has no "
                     "scores of its own for them)")

    def encoder_folders(self) -> List[str]:
        return [self.source]

    def input_key(self, metadata: Dict) -> str:
        return metadata["sentence_id"]

    # -- word distributions ---------------------------------------------------------------------
    def _pieces(self, words: List[str]) -> List[List[int]]:
        """Each word's piece ids (at most a window's budget; a word that gives none reads the unknown piece)."""
        encoded = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        pieces: List[List[int]] = [[] for _ in words]
        for position, word in enumerate(encoded.word_ids()):
            if word is not None:
                pieces[word].append(encoded["input_ids"][position])
        unknown = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else 0
        return [(p or [unknown])[: self.budget] for p in pieces]

    def word_log_probs(self, sentences: List[List[str]]) -> List[torch.Tensor]:
        """Each sentence's ``(n, len(teacher labels))`` log-probabilities at each word's first piece (see the module)."""
        jobs = []  # (sentence, window start, window end, input ids, first-piece positions)
        spans_of: List[List[Tuple[int, int]]] = []  # each sentence's windows
        for s, words in enumerate(sentences):
            pieces = self._pieces(words)
            spans_of.append(windows([len(p) for p in pieces], self.budget))
            for start, end in spans_of[-1]:
                body = [piece for word in pieces[start:end] for piece in word]
                ids = self.tokenizer.build_inputs_with_special_tokens(body)
                offset = next(i for i in range(len(ids)) if ids[i : i + len(body)] == body) if body else 0
                firsts, position = [], offset
                for word in pieces[start:end]:
                    firsts.append(position)
                    position += len(word)
                jobs.append((s, start, end, ids, firsts))
        results: Dict[Tuple[int, int], torch.Tensor] = {}
        order = sorted(range(len(jobs)), key=lambda j: len(jobs[j][3]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with torch.no_grad():
            batch: List[int] = []
            for j in [*order, None]:
                longest = len(jobs[j][3]) if j is not None else 0
                if batch and (j is None or (len(batch) + 1) * max(longest, 1) > self.batch_pieces):
                    width = max(len(jobs[b][3]) for b in batch)
                    ids = torch.full((len(batch), width), pad, dtype=torch.long)
                    attention = torch.zeros((len(batch), width), dtype=torch.long)
                    for row, b in enumerate(batch):
                        ids[row, : len(jobs[b][3])] = torch.tensor(jobs[b][3])
                        attention[row, : len(jobs[b][3])] = 1
                    logits = self.model(input_ids=ids.to(self.device), attention_mask=attention.to(self.device)).logits
                    log_probs = logits.float().log_softmax(-1).cpu()
                    for row, b in enumerate(batch):
                        results[(jobs[b][0], jobs[b][1])] = log_probs[row, jobs[b][4]]
                    batch = []
                if j is not None:
                    batch.append(j)
        found = []
        for s, words in enumerate(sentences):
            starts = [spans_of[s][best_window(i, spans_of[s])][0] for i in range(len(words))]
            rows = [results[(s, start)][i - start] for i, start in enumerate(starts)]
            found.append(torch.stack(rows) if rows else torch.zeros(0, len(self.mapping.teacher_labels)))
        return found

    def potentials(self, sentences: List[List[str]]) -> Potentials:
        """The teacher's distribution over the student's label sequences, a batch of ``sentences`` padded."""
        per_sentence = [self.mapping.student_log_probs(lp) for lp in self.word_log_probs(sentences)]
        length = max([len(s) for s in sentences] + [1])
        emissions = torch.zeros(len(sentences), length, len(self.labels))
        mask = torch.zeros(len(sentences), length, dtype=torch.bool)
        for b, values in enumerate(per_sentence):
            emissions[b, : len(values)] = values
            mask[b, : len(values)] = True
        if self.constraints is None:
            return TokenPotentials(emissions, mask)
        zeros = emissions.new_zeros(len(self.labels))
        return ChainPotentials(emissions, mask, emissions.new_zeros(len(self.labels), len(self.labels)), zeros, zeros,
                               self.constraints)

    # One forward pass's sentences (their windows are batched by length within it).
    SENTENCES_PER_CALL = 64

    def annotate(self, sentences: List[Dict], objective: KDLoss) -> List[Dict[str, np.ndarray]]:
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]["words"]))
        results: List[Optional[Dict[str, np.ndarray]]] = [None] * len(sentences)
        for start in range(0, len(order), self.SENTENCES_PER_CALL):
            group = order[start : start + self.SENTENCES_PER_CALL]
            words = [sentences[i]["words"] for i in group]
            potentials = self.potentials(words)
            with torch.no_grad():
                best, _ = potentials.constrained().as_chain().viterbi()
                distribution = SequenceTeacher(potentials, best, own_scores=self.mapping.one_to_one)
                targets = dict(objective.storage_targets(distribution), pseudo_tags=best)
            for b, i in enumerate(group):
                n = len(words[b])
                results[i] = {name: trim_to_length(name, value[b], n).detach().cpu().numpy() for name, value in targets.items()}
        return [r for r in results if r is not None]
