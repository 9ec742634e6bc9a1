"""
Opening model archives that may come from elsewhere: no member written outside the folder it is
extracted to, a clear error for what is not an archive, and no non-finite weight served.

AllenNLP's ``load_archive`` extracts a ``model.tar.gz`` with ``tarfile.extractall`` unfiltered, so a
crafted member such as ``../../x`` or ``/x`` is written wherever the process may write. Every place
this project opens an archive (export, teachers, the demo, the predictors' command lines) goes
through :func:`load_model_archive`, which extracts with Python's ``data`` filter (no absolute
names, no ``..``, no links out, no device files) and then loads the extracted folder.
"""
import contextlib
import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from typing import Iterable, Iterator, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import Archive


class UnsafeArchiveError(ConfigurationError):
    """An archive with a member that would be written outside the folder it is extracted to."""


def _check_member(member: tarfile.TarInfo, destination: str, archive_path: str) -> tarfile.TarInfo:
    """Python's ``data`` filter where it exists (3.11.4+), else the same rules checked here."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            return data_filter(member, destination)
        except tarfile.FilterError as error:
            raise UnsafeArchiveError(f"{archive_path} holds a member that is refused ({error}): it is not a model "
                                     "archive this project wrote, and nothing of it was extracted") from None
    name = member.name
    target = os.path.realpath(os.path.join(destination, name))
    inside = os.path.commonpath([os.path.realpath(destination), target]) == os.path.realpath(destination)
    if os.path.isabs(name) or not inside or member.isdev() or (member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"{archive_path} holds a member that is refused ({name!r}: an absolute name, a name "
                                 "outside the folder, a link or a device): it is not a model archive this project wrote")
    return member


def extract_model_archive(archive_path: str, destination: str) -> None:
    """Extract ``archive_path`` (a gzipped tar) into ``destination``; every member is checked before any is written."""
    if not os.path.isfile(archive_path):
        raise ConfigurationError(f"no model archive at {archive_path}")
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = [_check_member(member, destination, archive_path) for member in archive.getmembers()]
            for member in members:
                archive.extract(member, destination, set_attrs=False, **_no_filter())
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        what = "an empty file, not a model archive" if os.path.getsize(archive_path) == 0 else f"not a model archive ({error})"
        raise ConfigurationError(f"{archive_path} is {what}: a model archive is the model.tar.gz that `allennlp train` "
                                 "writes") from None


def _no_filter() -> dict:
    """The members were checked already: ``extract`` is told so (Python 3.12+ would warn without a filter)."""
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


@contextlib.contextmanager
def extracted_model_archive(archive_path: str) -> Iterator[str]:
    """A temporary folder holding the checked extraction of ``archive_path``, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="structkd-archive-")
    try:
        extract_model_archive(archive_path, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_model_archive(archive_path: str, cuda_device: int = -1, overrides: str = "") -> Archive:
    """AllenNLP's ``load_archive`` of a checked extraction of ``archive_path`` (or of a training folder as it is)."""
    from allennlp.models.archival import load_archive

    if os.path.isdir(archive_path):
        return load_archive(archive_path, cuda_device=cuda_device, overrides=overrides)
    with extracted_model_archive(archive_path) as folder:
        try:
            return load_archive(folder, cuda_device=cuda_device, overrides=overrides)
        except ConfigurationError as error:  # named by the archive, not by the temporary folder
            raise ConfigurationError(f"{archive_path}: {str(error).replace(folder, '(the archive)')}") from None


@contextlib.contextmanager
def _checked_extraction(resolved_archive_file, cleanup: bool = True) -> Iterator[str]:
    """What AllenNLP's ``extracted_archive`` does, with every member checked."""
    folder = tempfile.mkdtemp(prefix="structkd-archive-")
    try:
        extract_model_archive(str(resolved_archive_file), folder)
        yield folder
    finally:
        if cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def check_archives_in_this_command() -> None:
    """In the ``allennlp`` command line with this plugin (never on a library import): its own archive loading
    (``allennlp predict``, ``evaluate``, ``fine-tune``) extracts through the same checks."""
    from allennlp.models import archival

    archival.extracted_archive = _checked_extraction


def non_finite(named_tensors: Iterable[Tuple[str, torch.Tensor]]) -> Iterator[Tuple[str, str]]:
    """``(name, what)`` of each tensor holding NaN or infinite values, e.g. ``("projection.weight", "3 NaN")``."""
    for name, tensor in named_tensors:
        if not torch.is_floating_point(tensor):
            continue
        nan = int(torch.isnan(tensor).sum())
        inf = int(torch.isinf(tensor).sum())
        if nan or inf:
            yield name, ", ".join(part for part in (f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else "") if part)


def check_finite(named_tensors: Iterable[Tuple[str, torch.Tensor]], where: str) -> None:
    """ConfigurationError naming the parameters that hold NaN or infinite values."""
    bad = list(non_finite(named_tensors))
    if bad:
        listed = "; ".join(f"{name}: {what}" for name, what in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ConfigurationError(f"{where} has non-finite weights, which would serve wrong labels silently: {listed}{more}. "
                                 "Use an earlier checkpoint, or train again (e.g. with a lower learning rate)")


__all__ = ["UnsafeArchiveError", "check_archives_in_this_command", "check_finite", "extract_model_archive",
           "extracted_model_archive", "load_model_archive", "non_finite"]
