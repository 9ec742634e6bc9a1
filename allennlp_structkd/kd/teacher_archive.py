"""A teacher given as a training config: trained once, in a subprocess, and cached by the hash of its config and data."""
import hashlib
import json
import logging
import os
import shutil

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


def ensure_teacher_archive(path: str, cache_directory: str) -> str:
    """
    ``path`` itself when it is a model archive; when it is a training config (``.jsonnet`` /
    ``.json``), the archive of that config trained once with ``allennlp train`` in a subprocess and
    kept under ``cache_directory/teachers/<hash of the evaluated config>`` (a file lock keeps
    concurrent runs from training it twice).
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
    directory = teacher_directory(path, cache_directory)
    archive = os.path.join(directory, "model.tar.gz")
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    with FileLock(directory + ".lock"):
        if not os.path.isfile(archive):
            if os.path.isdir(directory):
                shutil.rmtree(directory)  # an earlier, interrupted training
            logger.info("training teacher %s into %s (once; later runs reuse it; log: %s.log)", path, directory, directory)
            result = run_allennlp("train", path, "-s", directory, log=directory + ".log", append=False)
            if result.returncode != 0 or not os.path.isfile(archive):
                with open(directory + ".log", errors="replace") as log:
                    tail = log.read()[-3000:]
                raise ConfigurationError(
                    f"training the teacher from {path} failed (exit {result.returncode}); the end of {directory}.log:\n{tail}")
    return archive
