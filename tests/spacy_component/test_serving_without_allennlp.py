"""
An exported student served by structkd-spacy: the same labels as its AllenNLP archive and marginals
within 1e-5, in a process where AllenNLP cannot be imported; its pipeline saved and restored; spaCy's
scores.
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
LANGUAGES = {"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")}
# a process in which `import allennlp` and `import allennlp_structkd` raise: what a server without them is
BLOCK = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name.split('.')[0] in ('allennlp', 'allennlp_structkd'):\n"
    "            raise ImportError(f'{name} is not installed here')\n"
    "sys.meta_path.insert(0, Block())\n"
)


@pytest.fixture(scope="module")
def kd_student(teacher_archive, tmp_path_factory):
    """The fixtures' KD config (a CRF student distilled from the CRF teacher, es + nl), trained, and its export."""
    from allennlp.commands.train import train_model_from_file

    from allennlp_structkd.export import export

    directory = tmp_path_factory.mktemp("kd_student")
    env = {"STRUCTKD_TEST_TEACHER": teacher_archive, "STRUCTKD_TEST_OBJECTIVE": json.dumps({"type": "structural"}),
           "STRUCTKD_TEST_DECODER": "structkd_crf_tagger", "STRUCTKD_TEST_CACHE": str(directory / "cache")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        train_model_from_file(str(FIXTURES / "configs" / "kd_student.jsonnet"), str(directory / "run"))
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    archive = str(directory / "run" / "model.tar.gz")
    return archive, export(archive, str(directory / "exported"))


def archive_predictions(archive, path, lang):
    """Tags and marginals of the AllenNLP archive on a file's sentences."""
    from allennlp.models.archival import load_archive
    from allennlp.predictors import Predictor

    from allennlp_structkd.dataset_readers import ConllNerReader

    predictor = Predictor.from_archive(load_archive(archive), "structkd_tagger")
    sentences = [i["metadata"]["words"] for i in ConllNerReader().read(path)]
    results = [predictor.predict_json({"tokens": words, "lang": lang}) for words in sentences]
    return sentences, results


def test_the_export_is_a_self_contained_folder(kd_student):
    _, folder = kd_student
    assert sorted(os.listdir(folder)) == ["student.json", "vocabulary.json", "weights.pt"]
    with open(os.path.join(folder, "student.json")) as handle:
        spec = json.load(handle)
    assert spec["format"] == "structkd-student" and spec["format_version"] == 1 and spec["kind"] == "crf_tagger"
    assert spec["languages"] == ["es", "nl"] and spec["label_encoding"] == "BIOES"
    assert [i["type"] for i in spec["inputs"]] == ["characters", "words"]  # AllenNLP's order: sorted names


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_parity_with_the_archive_on_each_language(kd_student, lang):
    archive, folder = kd_student
    sentences, expected = archive_predictions(archive, LANGUAGES[lang], lang)
    nlp = spacy.blank(lang)
    nlp.add_pipe("structkd_tagger", config={"model": folder})
    for words, result in zip(sentences, expected):
        doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
        assert [t._.structkd_label for t in doc] == result["tags"]
        numpy.testing.assert_allclose(doc._.structkd_probs, numpy.array(result["probs"]), atol=1e-5, rtol=0)
        assert doc._.structkd_labels == result["labels"]


def test_it_serves_where_allennlp_cannot_be_imported_and_survives_saving(kd_student, tmp_path):
    archive, folder = kd_student
    sentences, expected = archive_predictions(archive, LANGUAGES["es"], "es")
    code = BLOCK + f"""
import json, spacy
from spacy.tokens import Doc
for name in ("allennlp", "allennlp_structkd"):
    try:
        __import__(name)
        raise SystemExit(name + " imported")
    except ImportError:
        pass
sentences = {sentences!r}
def labels(nlp):
    return [[t._.structkd_label for t in nlp(Doc(nlp.vocab, words=words))] for words in sentences]
nlp = spacy.blank("es")
nlp.add_pipe("structkd_tagger", config={{"model": {folder!r}}})
first = labels(nlp)
nlp.to_disk({str(tmp_path / "pipeline")!r})
from_disk = labels(spacy.load({str(tmp_path / "pipeline")!r}))
data = nlp.to_bytes()
restored = spacy.blank("es").from_config(nlp.config)
restored.from_bytes(data)
print(json.dumps([first, from_disk, labels(restored)]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    first, from_disk, from_bytes = json.loads(result.stdout.strip().splitlines()[-1])
    assert first == [r["tags"] for r in expected] and from_disk == first and from_bytes == first


def test_an_unknown_language_is_an_error_at_add_pipe(kd_student):
    _, folder = kd_student
    with pytest.raises(ValueError, match=r"serves es, nl, not 'de'"):
        spacy.blank("de").add_pipe("structkd_tagger", config={"model": folder})
    nlp = spacy.blank("xx")
    nlp.add_pipe("structkd_tagger", config={"model": folder, "lang": "nl"})
    assert len(nlp("Jan woont in Gent .").ents) >= 0


def test_nlp_evaluate_gives_spacys_keys(kd_student, seq_label_parser_archive):
    from spacy.training import Example

    _, folder = kd_student
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": folder})
    gold = spacy.tokens.Doc(nlp.vocab, words=["Juan", "visitó", "Madrid", "."], ents=["B-PER", "O", "B-LOC", "O"])
    scores = nlp.evaluate([Example(nlp.make_doc("Juan visitó Madrid ."), gold)])
    assert {"ents_f", "ents_p", "ents_r", "ents_per_type"} <= set(scores)
    parser = spacy.blank("en")
    parser.add_pipe("structkd_tagger", config={"model": seq_label_parser_archive})
    words, pos = ["The", "dog", "barks", "."], ["DET", "NOUN", "VERB", "PUNCT"]
    predicted = spacy.tokens.Doc(parser.vocab, words=words, pos=pos)
    gold = spacy.tokens.Doc(parser.vocab, words=words, pos=pos, heads=[1, 2, 2, 2], deps=["det", "nsubj", "ROOT", "punct"])
    scores = parser.evaluate([Example(predicted, gold)])
    assert {"dep_uas", "dep_las"} <= set(scores) and 0 <= scores["dep_uas"] <= 1


def test_a_word_piece_student_serves_with_its_tokenizer(teacher_archive, tmp_path):
    """STUDENT_INPUT=pieces (the tiny BERT fixture's pieces): exported with its tokenizer, the same labels and marginals,
    from PyTorch and from ONNX Runtime."""
    from allennlp.commands.train import train_model_from_file

    from allennlp_structkd.export import export

    saved = os.environ.get("STUDENT_INPUT")
    os.environ["STUDENT_INPUT"] = "pieces"
    try:
        train_model_from_file(os.path.join(os.path.dirname(str(FIXTURES)), "..", "training_configs", "baseline_no_kd.jsonnet"),
                              str(tmp_path / "run"), overrides=json.dumps({"trainer.num_epochs": 2}))
    finally:
        os.environ.pop("STUDENT_INPUT") if saved is None else os.environ.__setitem__("STUDENT_INPUT", saved)
    archive = str(tmp_path / "run" / "model.tar.gz")
    folder = export(archive, str(tmp_path / "exported"), onnx=True)
    assert os.path.isfile(os.path.join(folder, "tokenizer.json"))
    from allennlp_structkd.config_defaults import DEFAULTS

    dev = json.loads(DEFAULTS["TAGGING_DEV"])["es"]
    sentences, expected = archive_predictions(archive, dev, "es")
    for backend in ("torch", "onnx"):  # its network in PyTorch, and exported to ONNX
        nlp = spacy.blank("es")
        nlp.add_pipe("structkd_tagger", config={"model": folder, "backend": backend})
        for words, result in zip(sentences, expected):
            doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
            assert [t._.structkd_label for t in doc] == result["tags"]
            numpy.testing.assert_allclose(doc._.structkd_probs, numpy.array(result["probs"]), atol=1e-5, rtol=0)
