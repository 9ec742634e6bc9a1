"""A teacher given as a training config: trained once, as an explicit step, in a subprocess, and cached by the hash of its
config and data; reading data only looks the archive up."""
import hashlib
import json
import logging
import os
import shutil
from typing import Optional

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from filelock import FileLock

from allennlp_structkd.commands import run_allennlp
from allennlp_structkd.config_defaults import ext_vars
from allennlp_structkd.kd.cache import file_sha256

logger = logging.getLogger(__name__)


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


def is_teacher_config(path: str) -> bool:
    """Whether a teacher is given as a training config (trained once, then cached) rather than an archive."""
    return path.endswith((".jsonnet", ".json"))


def teacher_directory(path: str, cache_directory: str) -> str:
    """Where the teacher trained from the config ``path`` is kept: by the hash of the evaluated config and its data."""
    params = Params.from_file(path, ext_vars=ext_vars()).as_dict(quiet=True)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode("utf-8"))
    for data_file in sorted(_referenced_files(params)):  # new data means a new teacher
        digest.update(file_sha256(data_file).encode("ascii"))
    name = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(cache_directory, "teachers", f"{name}-{digest.hexdigest()[:16]}")


class UntrainedTeacherError(ConfigurationError):
    """A teacher given as a training config that has not been trained: reading data never trains one."""


def teacher_archive(path: str, cache_directory: str) -> str:
    """
    The model archive a teacher path names, without training anything: ``path`` itself when it is an
    archive, its ``model.tar.gz`` when it is a training folder, and when it is a training config
    (``.jsonnet`` / ``.json``) the archive it was trained into (see :func:`train_teacher_config`), or an
    :class:`UntrainedTeacherError` that says how to train it.
    """
    if not is_teacher_config(path):
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
    archive = os.path.join(teacher_directory(path, cache_directory), "model.tar.gz")
    if not os.path.isfile(archive):
        raise UntrainedTeacherError(
            f"the teacher {path} is a training config that has not been trained (its archive would be {archive}); "
            "reading data does not train it. Train it first: `python -m allennlp_structkd.train_teachers STUDENT_CONFIG` "
            "(or `python -m allennlp_structkd.annotate STUDENT_CONFIG`, which also fills the cache), or give the student "
            "config `type: 'structkd_teachers_first'`, which trains it before the student; or give a trained "
            "model.tar.gz instead")
    return archive


def train_teacher_config(path: str, cache_directory: str, directory: Optional[str] = None) -> str:
    """
    The archive of the teacher training config ``path``, trained once with ``allennlp train`` in a
    subprocess and kept under ``cache_directory/teachers/<hash of the evaluated config and its data>`` (a
    file lock keeps concurrent runs from training it twice); ``directory``: that folder, where the caller
    has computed it already. ``path`` resolved as :func:`teacher_archive` does when it is not a config.
    """
    if not is_teacher_config(path) or not os.path.isfile(path):
        return teacher_archive(path, cache_directory)
    directory = directory or teacher_directory(path, cache_directory)
    archive = os.path.join(directory, "model.tar.gz")
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    with FileLock(directory + ".lock"):
        if not os.path.isfile(archive):
            if os.path.isdir(directory):
                shutil.rmtree(directory)  # an earlier, interrupted training of this teacher (its own folder)
            logger.info("training teacher %s into %s (once; later runs reuse it; log: %s.log)", path, directory, directory)
            result = run_allennlp("train", path, "-s", directory, log=directory + ".log", append=False)
            if result.returncode != 0 or not os.path.isfile(archive):
                with open(directory + ".log", errors="replace") as log:
                    tail = log.read()[-3000:]
                raise ConfigurationError(
                    f"training the teacher from {path} failed (exit {result.returncode}); the end of {directory}.log:\n{tail}")
    return archive
