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


def _check_member(member: tarfile.TarInfo, destination: str, archive_path: str) -> None:
    """A member of a model archive is a file or a folder whose name stays inside ``destination``: no absolute name, no
    ``..`` out, and no link, device or pipe at all (a model archive has none, and a link could redirect a later member)."""
    name = member.name
    target = os.path.normpath(os.path.join(destination, name))
    inside = os.path.commonpath([os.path.abspath(destination), os.path.abspath(target)]) == os.path.abspath(destination)
    if os.path.isabs(name) or not inside or not (member.isfile() or member.isdir()):
        what = "a link, device or pipe" if not (member.isfile() or member.isdir()) else "a name outside the folder"
        raise UnsafeArchiveError(f"{archive_path} holds a member that is refused ({name!r}: {what}): it is not a model "
                                 "archive this project wrote, and nothing of it was extracted")


def extract_model_archive(archive_path: str, destination: str) -> None:
    """Extract ``archive_path`` (a gzipped tar) into ``destination``; every member is checked before any is written,
    and extracted with Python's ``data`` filter besides, where Python has it."""
    if not os.path.isfile(archive_path):
        raise ConfigurationError(f"no model archive at {archive_path}")
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = archive.getmembers()
            for member in members:
                _check_member(member, destination, archive_path)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(destination, members=members, filter="data")
            else:
                archive.extractall(destination, members=members)  # checked above: files and folders inside only
    except tarfile.FilterError as error:  # what the data filter refuses beyond the checks above
        raise UnsafeArchiveError(f"{archive_path} holds a member that is refused ({error})") from None
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        what = "an empty file, not a model archive" if os.path.getsize(archive_path) == 0 else f"not a model archive ({error})"
        raise ConfigurationError(f"{archive_path} is {what}: a model archive is the model.tar.gz that `allennlp train` "
                                 "writes") from None


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
