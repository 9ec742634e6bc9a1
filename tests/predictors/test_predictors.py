import json
import subprocess
import sys

import pytest
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

import allennlp_structkd  # noqa: F401


def test_tagger_predictor_sentence_and_tokens(teacher_archive):
    predictor = Predictor.from_archive(load_archive(teacher_archive))  # the model's default: structkd_tagger
    assert type(predictor).__name__ == "StructKDTaggerPredictor"
    result = predictor.predict(sentence="Juan visitó Madrid ayer.", lang="es")
    assert result["words"] == ["Juan", "visitó", "Madrid", "ayer", "."]  # spacy.blank("es") splits the period
    assert len(result["tags"]) == len(result["tag_probs"]) == 5
    assert all(abs(sum(row) - 1) < 1e-4 for row in result["probs"])
    for span in result["spans"]:
        assert 0 <= span["start"] <= span["end"] < 5 and 0 < span["score"] <= 1
    tokens = predictor.predict(tokens=["Juan", "visitó", "Madrid"], lang="es")
    assert tokens["words"] == ["Juan", "visitó", "Madrid"]


@pytest.mark.parametrize("text", ["", "   ", "🙂 Ωμέγα 東京 x" * 3, "zzzzqqq unseen wordsss"])
def test_tagger_predictor_odd_input(teacher_archive, text):
    predictor = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger")
    result = predictor.predict(sentence=text, lang="es")
    assert len(result["tags"]) == len(result["words"])


def test_a_language_the_model_was_not_trained_on_is_refused_as_spacy_refuses_it(teacher_archive, tmp_path):
    predictor = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger")
    assert predictor.languages == ["es", "nl"]  # the fixture teacher's training data: {es: ..., nl: ...}
    for lang in ("en", "xx"):  # xx (several languages) is not es or nl either
        with pytest.raises(ConfigurationError, match=f"trained on es, nl text, not '{lang}'"):
            predictor.predict(sentence="John visited Madrid .", lang=lang)
    assert predictor.predict(sentence="John visited Madrid .")["words"]  # no lang given: served
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"sentence": "John visited Madrid .", "lang": "en"}) + "\n")
    result = subprocess.run([sys.executable, "-m", "allennlp", "predict", teacher_archive, str(inputs),
                             "--include-package", "allennlp_structkd", "--silent", "--output-file", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "trained on es, nl text, not 'en'" in result.stderr


def test_bad_input_is_a_clear_error(teacher_archive):
    predictor = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger")
    with pytest.raises(ConfigurationError, match="'sentence' or 'tokens'"):
        predictor.predict_json({"text": "hola"})


def test_parser_predictor(parser_archive):
    predictor = Predictor.from_archive(load_archive(parser_archive))
    assert type(predictor).__name__ == "StructKDParserPredictor"
    result = predictor.predict_json({"tokens": ["I", "like", "tea", "."], "upos": ["PRON", "VERB", "NOUN", "PUNCT"]})
    assert len(result["predicted_heads"]) == 4 and all(0 <= h <= 4 for h in result["predicted_heads"])
    assert len(result["predicted_dependencies"]) == len(result["head_confidences"]) == 4
    with pytest.raises(ConfigurationError, match="upos"):
        predictor.predict_json({"tokens": ["I", "like", "tea"]})


def test_allennlp_predict_command(teacher_archive, tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"sentence": "Ana vive en Gent .", "lang": "nl"}) + "\n" + json.dumps({"tokens": ["Jan", "won"]}) + "\n")
    output = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "allennlp", "predict", teacher_archive, str(inputs), "--output-file", str(output),
         "--include-package", "allennlp_structkd", "--silent"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [len(line["tags"]) for line in lines] == [5, 2]


@pytest.mark.parametrize("lang", ["punctuation", "__init__", "en.stop_words", "zz"])
def test_a_bad_language_code_is_a_clear_error(teacher_archive, lang):
    predictor = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger")
    with pytest.raises(ConfigurationError, match=r"is not a language code spaCy knows"):
        predictor.predict(sentence="Juan visitó Madrid .", lang=lang)


def test_a_batch_of_empty_sentences_does_not_stop_the_file(teacher_archive, tmp_path):
    """`allennlp predict --batch-size 2` over a batch of nothing but empty sentences goes on with the rest."""
    predictor = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger")
    assert predictor.predict_batch_json([{"sentence": ""}, {"sentence": "  "}]) == [predictor.EMPTY] * 2
    mixed = predictor.predict_batch_json([{"sentence": ""}, {"tokens": ["Juan", "vive"]}, {"tokens": []}])
    assert [len(r["tags"]) for r in mixed] == [0, 2, 0]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("\n".join(json.dumps(line) for line in [{"sentence": ""}, {"sentence": " "}, {"tokens": ["Ana"]},
                                                               {"sentence": "Jan woont in Gent ."}]) + "\n")
    output = tmp_path / "out.jsonl"
    result = subprocess.run([sys.executable, "-m", "allennlp", "predict", teacher_archive, str(inputs), "--batch-size", "2",
                             "--output-file", str(output), "--include-package", "allennlp_structkd", "--silent"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [len(json.loads(line)["tags"]) for line in output.read_text().splitlines()] == [0, 0, 1, 5]


def test_an_archive_whose_data_path_cannot_be_read_as_languages_still_loads(teacher_archive, tmp_path):
    import tarfile

    with tarfile.open(teacher_archive) as archive:
        archive.extractall(tmp_path / "run", filter="data")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["train_data_path"] = "{not json"
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    model = load_archive(str(tmp_path / "run")).model
    assert model.training_languages is None  # not recorded: served in any language, as before
    assert load_archive(teacher_archive).model.training_languages == ["es", "nl"]
