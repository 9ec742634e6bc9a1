"""What a newcomer is told: a misspelt setting is named with the one meant, a run on the configs' sample data
says so, a file of the wrong format says which format it looks like, and a UPOS student fills spaCy's pos_."""
import logging
import os

import pytest
import spacy

from allennlp_structkd import config_defaults
from allennlp_structkd.dataset_readers.common import InputError
from tests.dataset_readers.test_bad_input import reader

CONLLU = "# sent_id = 1\n# text = Juan visitó Madrid\n1\tJuan\t_\tPROPN\t_\t_\t2\tnsubj\t_\t_\n" \
         "2\tvisitó\t_\tVERB\t_\t_\t0\troot\t_\t_\n3\tMadrid\t_\tPROPN\t_\t_\t2\tobj\t_\t_\n\n"


def test_a_misspelt_setting_is_named_with_the_ones_meant(caplog):
    with caplog.at_level(logging.WARNING, logger="allennlp_structkd.config_defaults"):
        config_defaults.warn_unknown_settings({"TAGGING_TRAN_ES": "x", "STRUCTKD_TEACHER_EPOCH": "1", "MY_TEACHER": "y",
                                               "TAGGING_TRAIN_ES": "ok", "STRUCTKD_DATA_DIR": "tooling", "HOME": "/"})
    text = caplog.text
    assert "TAGGING_TRAN_ES is set, but no config reads it (did you mean TAGGING_TRAIN_ES" in text
    assert "STRUCTKD_TEACHER_EPOCH is set, but no config reads it (did you mean STRUCTKD_TEACHER_EPOCHS" in text
    assert "MY_TEACHER is set" in text
    assert "TAGGING_TRAIN_ES is set" not in text and "STRUCTKD_DATA_DIR" not in text and "HOME" not in text


def test_every_setting_the_configs_and_code_read_is_known():
    names = dict.fromkeys(list(config_defaults.DEFAULTS) + list(config_defaults.TOOLING_NAMES), "x")
    assert config_defaults.unknown_settings(names) == []


def test_a_run_on_the_sample_data_says_so(caplog, monkeypatch):
    from allennlp_structkd.dataset_readers import common
    from tests.conftest import SAMPLE_DATA

    monkeypatch.setattr(common, "_SAID_SAMPLE", set())  # said once per file and process: other tests read it first

    with caplog.at_level(logging.WARNING, logger="allennlp_structkd.dataset_readers.common"):
        list(reader("structkd_conll_ner").read(str(SAMPLE_DATA / "toy_ner_es.dev")))
    assert "reading the configs' sample data" in caplog.text and "toy_ner_es.dev" in caplog.text


def test_conllu_given_to_the_ner_reader_says_it_looks_like_conllu(tmp_path):
    path = tmp_path / "train.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    with pytest.raises(InputError, match="this looks like CoNLL-U: read it with the structkd_conllu reader"):
        list(reader("structkd_conll_ner").read(str(path)))


def test_conll2002_given_to_the_conllu_reader_says_it_looks_like_conll_columns(tmp_path):
    path = tmp_path / "esp.train"
    path.write_text("Juan B-PER\nvisitó O\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="this looks like CoNLL column data .* structkd_conll_ner"):
        list(reader("structkd_conllu").read(str(path)))


def test_a_upos_student_fills_pos_and_leaves_tag_for_fine_grained_tags(tmp_path):
    """spaCy's own converters and scorer read UPOS from token.pos_ and XPOS from token.tag_."""
    import os
    import subprocess
    import sys

    from allennlp_structkd.export import export
    from tests.conftest import FIXTURES

    env = dict(os.environ, STRUCTKD_TASK="upos", STRUCTKD_EPOCHS="1")
    config = FIXTURES.parent.parent / "training_configs" / "baseline_no_kd.jsonnet"
    data = FIXTURES.parent.parent / "training_configs" / "sample_data" / "ud_en_small.conllu"
    env.update(TAGGING_TRAIN=str(data), TAGGING_DEV=str(data))
    result = subprocess.run([sys.executable, "-m", "allennlp", "train", str(config), "-s", str(tmp_path / "run"),
                             "--include-package", "allennlp_structkd"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = export(str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "student"))
    nlp = spacy.blank("en")
    component = nlp.add_pipe("structkd_tagger", config={"model": folder})
    doc = nlp("The dog barks .")
    assert component.is_upos and all(t.pos_ for t in doc) and not any(t.tag_ for t in doc)
    from spacy.training import Example

    gold = spacy.tokens.Doc(nlp.vocab, words=["The", "dog", "barks", "."], pos=["DET", "NOUN", "VERB", "PUNCT"])
    scores = component.score([Example(nlp(gold.text), gold)])
    assert "pos_acc" in scores and "tag_acc" not in scores


def test_the_model_may_come_at_initialize_and_none_at_all_is_an_error_there(teacher_archive):
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger")
    with pytest.raises(ValueError, match="has no model: give it at add_pipe .* or at initialize"):
        nlp.initialize()
    nlp.get_pipe("structkd_tagger").initialize(model=teacher_archive)
    assert [t._.structkd_label for t in nlp("Juan visitó Madrid .")][0] is not None


@pytest.mark.parametrize("value, message", [
    ('{"trainer.num_epochs": 3', r"-o/--overrides is not a JSON object: .*trainer\.num_epochs"),
    ("[1, 2]", r"-o/--overrides must be a JSON object of settings, got '\[1, 2\]'"),
])
def test_overrides_that_are_no_json_object_are_an_error_naming_the_option(value, message):
    from allennlp_structkd.config_defaults import check_overrides

    with pytest.raises(SystemExit, match=message):
        check_overrides(["allennlp", "train", "c.jsonnet", "-s", "out", "-o", value])
    with pytest.raises(SystemExit, match=message):
        check_overrides(["allennlp", "train", "c.jsonnet", f"--overrides={value}"])
    check_overrides(["allennlp", "train", "c.jsonnet", "-o", '{"trainer.num_epochs": 3}'])  # JSON
    check_overrides(["allennlp", "train", "c.jsonnet", "-o", "{trainer: {num_epochs: 3}}"])  # Jsonnet, as AllenNLP takes
    check_overrides(["allennlp", "train", "c.jsonnet", "-o", ""])  # AllenNLP's default


def test_the_allennlp_command_names_a_malformed_override(tmp_path):
    import subprocess
    import sys

    from allennlp_structkd.paths import CONFIGS

    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "allennlp"), "train",
                             os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), "-s", str(tmp_path / "out"), "-o", "{bad",
                             "--include-package", "allennlp_structkd"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "-o/--overrides is not a JSON object: '{bad'" in result.stderr
    assert not (tmp_path / "out").exists()
