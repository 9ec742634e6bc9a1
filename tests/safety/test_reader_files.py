"""Data files as people have them: UTF-16 text reads, an empty or marker-only file is an error naming it, and
a PTB sentence with two roots is refused."""
import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.dataset_readers.common import InputError
from tests.dataset_readers.test_bad_input import READERS, reader


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_text_in_utf16_or_utf32_reads_as_in_utf8(kind, encoding, tmp_path):
    name, text = READERS[kind]
    expected = [i["metadata"]["words"] for i in reader(kind).read(str(_write(tmp_path / f"u8-{name}", text, "utf-8")))]
    path = _write(tmp_path / name, text.replace("\n", "\r\n"), encoding)
    assert [i["metadata"]["words"] for i in reader(kind, encoding=encoding).read(str(path))] == expected


def test_undecodable_utf16_names_the_file_and_line(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("Juan visitó\nMálaga\n".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate at the end
    with pytest.raises(InputError, match=r"text.txt, line 3: bytes .* are not valid utf-16-le"):
        list(reader("structkd_unlabeled_text", encoding="utf-16-le").read(str(path)))


def _write(path, text, encoding):
    path.write_bytes(text.encode(encoding))
    return path


EMPTY = [(kind, content) for kind in sorted(READERS) for content in ("", "\n\n  \n")] + [
    ("structkd_conll_ner", "-DOCSTART- -X- O\n\n-DOCSTART- -X- O\n")]  # to the other readers a marker is words


@pytest.mark.parametrize("kind, content", EMPTY)
def test_a_file_with_no_sentences_is_an_error_naming_it(kind, content, tmp_path):
    name = READERS[kind][0]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=rf"{name} holds no sentences"):
        list(reader(kind).read(str(path)))


def test_a_ptb_sentence_with_two_roots_is_refused(tmp_path):
    path = tmp_path / "two_roots.dp"
    path.write_text("Juan\tNNP\t2\nvisitó\tVBD\t0\nMadrid\tNNP\t0\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"two_roots.dp, line 3: a sentence needs exactly one word whose head is 0 "
                                         r"\(the root\), this one has 2: words 2, 3"):
        list(reader("structkd_ptb_dependency").read(str(path)))
