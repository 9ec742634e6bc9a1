"""
The ONNX backend: a student exported with ``--onnx`` serves the same labels and marginals (within 1e-5) from
ONNX Runtime as from PyTorch, for every kind of student, in a process where PyTorch cannot be imported; what
is missing or damaged is a clear error.
"""
import json
import os
import subprocess
import sys

import numpy
import pytest
import spacy

from tests.conftest import FIXTURES

DATA = FIXTURES / "data"
# a process in which torch, allennlp and allennlp_structkd cannot be imported: a serving install without them
BLOCK = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'allennlp', 'allennlp_structkd'):\n"
    "            raise ImportError(f'{name} is not installed here')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def sentences(path, count=12):
    from allennlp_structkd.dataset_readers import ConllNerReader

    return [list(i["metadata"]["words"]) for i in ConllNerReader().read(path)][:count]


@pytest.fixture(scope="module")
def exported(teacher_archive, maxent_teacher_archive, seq_label_parser_archive, tmp_path_factory):
    from allennlp_structkd.export import export

    folder = tmp_path_factory.mktemp("onnx")
    return {kind: export(archive, str(folder / kind), onnx=True) for kind, archive in
            (("crf", teacher_archive), ("maxent", maxent_teacher_archive), ("parser", seq_label_parser_archive))}


def pipe(folder, backend, lang="es"):
    nlp = spacy.blank(lang)
    return nlp, nlp.add_pipe("structkd_tagger", config={"model": folder, "backend": backend})


@pytest.mark.parametrize("kind", ["crf", "maxent", "parser"])
def test_onnx_gives_the_networks_scores_on_batches_of_any_shape(exported, kind):
    """Padding (sentences of different lengths, words of different widths) changes no score: the BiLSTM's packed
    sequences survive the export."""
    _, torch_tagger = pipe(exported[kind], "torch")
    _, onnx_tagger = pipe(exported[kind], "onnx")
    assert (torch_tagger.network.name, onnx_tagger.network.name) == ("torch", "onnx")
    words = sentences(str(DATA / "ner_es.conll"))
    for batch in (words[:1], words[:5], words):
        arrays, mask = torch_tagger.indexer.arrays(batch)
        numpy.testing.assert_allclose(onnx_tagger.network.scores(arrays, mask)[mask],
                                      torch_tagger.network.scores(arrays, mask)[mask], atol=1e-5, rtol=0)
    if kind == "crf":
        for ours, theirs in zip(onnx_tagger.network.crf, torch_tagger.network.crf):
            numpy.testing.assert_array_equal(ours, theirs)


def test_the_onnx_pipeline_tags_as_the_torch_one(exported):
    words = sentences(str(DATA / "ner_es.conll"))
    nlp, _ = pipe(exported["crf"], "torch")
    onnx_nlp, tagger = pipe(exported["crf"], "auto")  # the folder has network.onnx and ONNX Runtime is here
    assert tagger.network.name == "onnx"
    for sentence in words:
        expected, found = nlp(spacy.tokens.Doc(nlp.vocab, words=sentence)), onnx_nlp(spacy.tokens.Doc(onnx_nlp.vocab, words=sentence))
        assert [t._.structkd_label for t in found] == [t._.structkd_label for t in expected]
        assert [(e.start, e.end, e.label_) for e in found.ents] == [(e.start, e.end, e.label_) for e in expected.ents]
        numpy.testing.assert_allclose(found._.structkd_probs, expected._.structkd_probs, atol=1e-5, rtol=0)


def test_it_serves_where_torch_cannot_be_imported_and_survives_saving(exported, tmp_path):
    words = sentences(str(DATA / "ner_es.conll"), 4)
    nlp, _ = pipe(exported["crf"], "torch")
    expected = [[t._.structkd_label for t in nlp(spacy.tokens.Doc(nlp.vocab, words=w))] for w in words]
    script = BLOCK + (
        "import json, sys, spacy\n"
        "folder, saved, words = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n"
        "nlp = spacy.blank('es')\n"
        "nlp.add_pipe('structkd_tagger', config={'model': folder})\n"
        "labels = [[t._.structkd_label for t in nlp(spacy.tokens.Doc(nlp.vocab, words=w))] for w in words]\n"
        "nlp.to_disk(saved)\n"
        "again = spacy.load(saved)\n"
        "assert labels == [[t._.structkd_label for t in again(spacy.tokens.Doc(again.vocab, words=w))] for w in words]\n"
        "assert 'torch' not in sys.modules\n"
        "print(json.dumps(labels))\n")
    result = subprocess.run([sys.executable, "-c", script, exported["crf"], str(tmp_path / "saved"), json.dumps(words)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_a_missing_backend_says_what_to_install(exported):
    script = BLOCK + (
        "import spacy, sys\n"
        "nlp = spacy.blank('es')\n"
        "try:\n"
        "    nlp.add_pipe('structkd_tagger', config={'model': sys.argv[1], 'backend': 'torch'})\n"
        "except ImportError as error:\n"
        "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", script, exported["crf"]], capture_output=True, text=True, timeout=300)
    assert "needs PyTorch (pip install structkd-spacy[torch])" in result.stdout, result.stderr[-2000:]


def test_a_folder_without_the_onnx_network_or_with_a_damaged_one_is_named(exported, tmp_path, teacher_archive):
    from allennlp_structkd.export import export

    plain = export(teacher_archive, str(tmp_path / "plain"))
    assert not os.path.exists(os.path.join(plain, "network.onnx"))
    assert pipe(plain, "auto")[1].network.name == "torch"  # no ONNX network: PyTorch serves it
    with pytest.raises(ValueError, match=r"plain has no network.onnx: export the student with .*--onnx"):
        pipe(plain, "onnx")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in os.listdir(exported["crf"]):
        with open(os.path.join(exported["crf"], name), "rb") as handle:
            (damaged / name).write_bytes(handle.read())
    (damaged / "network.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match=r"damaged/network.onnx is not an ONNX network"):
        pipe(str(damaged), "onnx")
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnx"):
        pipe(exported["crf"], "tensorflow")


def test_an_onnx_export_replaces_an_earlier_export(teacher_archive, tmp_path):
    from allennlp_structkd.export import export

    target = str(tmp_path / "student")
    export(teacher_archive, target, onnx=True)
    export(teacher_archive, target, onnx=True)  # an earlier export, network.onnx included, may be replaced
    export(teacher_archive, target)  # and a plain export replaces it whole: no stale network is left
    assert sorted(os.listdir(target)) == ["student.json", "vocabulary.json", "weights.pt"]
    with open(os.path.join(target, "student.json")) as handle:
        assert json.load(handle)["kind"] == "crf_tagger"
