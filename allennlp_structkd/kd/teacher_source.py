"""
Where a teacher comes from, as a config names it (the ``teachers`` map of the ``structkd_teacher``
reader): a registered :class:`TeacherSource`.

    teachers: {es: "runs/teacher_es/model.tar.gz"}                          # a model archive (or its folder)
    teachers: {es: "training_configs/teachers/crf_tagger_es.jsonnet"}       # a teacher config, trained once, first
    teachers: {es: "/models/my-ner-model"}                                  # a Hugging Face folder (config.json)
    teachers: {es: {type: "huggingface", model: "/models/my-ner-model", label_mapping: {...}}}
    teachers: {es: {type: "archive", path: "runs/teacher_es/model.tar.gz"}}

A plain path is an archive, a config or a Hugging Face token-classification folder, told apart by
what it is (a folder with ``config.json`` and no ``model.tar.gz`` is a Hugging Face folder). A teacher config is
trained by an explicit step before the data is read (:meth:`TeacherSource.prepare`: ``train_teachers``, ``annotate``,
or a student config of ``type: 'structkd_teachers_first'``); reading data never trains one.
"""
import json
import os
from typing import Dict, Optional, Union

from allennlp.common import Registrable

from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher, is_huggingface_folder
from allennlp_structkd.kd.teacher import LoadedTeacher, Teacher
from allennlp_structkd.kd.teacher_archive import is_teacher_config, teacher_archive, teacher_directory, train_teacher_config


class TeacherSource(Registrable):
    """A teacher as a config names it; :meth:`load` makes the teacher."""

    default_implementation = "archive"

    def describe(self) -> str:
        """What it names, for messages (and, as the same text for the same teacher, to load each teacher once)."""
        raise NotImplementedError

    def load(self, cuda_device: int, cache_directory: str, scheme: Optional[str]) -> LoadedTeacher:
        """The teacher, on ``cuda_device`` (-1: the CPU), its outputs cached in ``cache_directory``; ``scheme``: the
        student's span scheme (``BIOES``/``BIO``) or None for plain tags."""
        raise NotImplementedError

    def prepare(self, cache_directory: str) -> Optional[str]:
        """The explicit step before a teacher is loaded, done once (a teacher config is trained; loading never
        trains one); returns what it says it does, or None."""
        return None


@TeacherSource.register("archive")
class ArchiveTeacherSource(TeacherSource):
    """
    # Parameters

    path : `str`
        A model archive (``model.tar.gz``), its training folder, or a teacher training config
        (``.jsonnet``/``.json``), trained once and cached.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self) -> str:
        return self.path

    def load(self, cuda_device: int, cache_directory: str, scheme: Optional[str]) -> LoadedTeacher:
        return Teacher(self.path, cuda_device, cache_directory)

    def prepare(self, cache_directory: str) -> Optional[str]:
        if not is_teacher_config(self.path) or not os.path.isfile(self.path):
            teacher_archive(self.path, cache_directory)  # an archive, which must be there (or a clear error)
            return None
        directory = teacher_directory(self.path, cache_directory)  # hashes the config's data files: once
        said = None
        if not os.path.isfile(os.path.join(directory, "model.tar.gz")):
            said = f"a training config, {self.path}: training it once (its log: {directory}.log) ..."
        train_teacher_config(self.path, cache_directory, directory)
        return said


@TeacherSource.register("huggingface")
class HuggingFaceTeacherSource(TeacherSource):
    """
    A fine-tuned Hugging Face token classifier (see :mod:`allennlp_structkd.kd.huggingface_teacher`).

    # Parameters

    model : `str`
        Its local folder, as ``save_pretrained`` writes it.
    label_mapping : `Dict[str, str]`, optional (default = `None`)
        Its label names -> the names they stand for in the student's data (e.g. ``{"B-PERSON": "B-PER"}``).
    max_length : `int`, optional (default = `None`)
        Word pieces a window holds (default: what the model's positions allow).
    """

    def __init__(self, model: str, label_mapping: Optional[Dict[str, str]] = None, max_length: Optional[int] = None) -> None:
        self.model = model
        self.label_mapping = dict(label_mapping or {})
        self.max_length = max_length

    def describe(self) -> str:
        extra = {k: v for k, v in (("label_mapping", self.label_mapping), ("max_length", self.max_length)) if v}
        return self.model + (f" {json.dumps(extra, sort_keys=True)}" if extra else "")

    def load(self, cuda_device: int, cache_directory: str, scheme: Optional[str]) -> LoadedTeacher:
        return HuggingFaceTeacher(self.model, cuda_device, cache_directory, scheme, self.label_mapping, self.max_length)


def as_teacher_source(value: Union[str, TeacherSource]) -> TeacherSource:
    """A ``teachers`` entry as a source: a source itself, or a plain path (a Hugging Face folder or an archive/config)."""
    if isinstance(value, TeacherSource):
        return value
    if is_huggingface_folder(value):
        return HuggingFaceTeacherSource(value)
    return ArchiveTeacherSource(value)
