"""Training a teacher from its config is an explicit step: reading data never does it."""
import json
import os
import subprocess
import sys

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.data import DatasetReader

import allennlp_structkd  # noqa: F401
from allennlp_structkd.kd.teacher_archive import UntrainedTeacherError
from tests.conftest import FIXTURES

STUDENT = FIXTURES / "configs" / "kd_student.jsonnet"
TEACHER_CONFIG = FIXTURES / "configs" / "crf_tagger.jsonnet"


@pytest.fixture
def student_env(monkeypatch, tmp_path):
    values = {"STRUCTKD_TEST_DATA": str(FIXTURES / "data"), "STRUCTKD_TEST_TEACHER": str(TEACHER_CONFIG),
              "STRUCTKD_TEST_OBJECTIVE": json.dumps({"type": "structural"}), "STRUCTKD_TEST_DECODER": "structkd_crf_tagger",
              "STRUCTKD_TEST_CACHE": str(tmp_path / "cache")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ, **values)


def _trained_teachers(tmp_path):
    return sorted((tmp_path / "cache" / "teachers").glob("*/model.tar.gz"))


def test_reading_data_names_an_untrained_teacher_config_and_trains_nothing(student_env, tmp_path):
    params = Params.from_file(str(STUDENT))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    with pytest.raises(UntrainedTeacherError, match=r"crf_tagger\.jsonnet is a training config that has not been trained.*"
                                                    r"allennlp_structkd\.train_teachers.*structkd_teachers_first"):
        next(iter(reader.read(params.pop("train_data_path"))))
    assert _trained_teachers(tmp_path) == []


def test_train_teachers_trains_a_config_once_and_then_reading_finds_it(student_env, tmp_path):
    command = [sys.executable, "-m", "allennlp_structkd.train_teachers", str(STUDENT)]
    first = subprocess.run(command, env=student_env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    # one config names the teacher of both languages: trained once
    assert "is a training config" in first.stdout and "1 teacher(s) trained" in first.stdout, first.stdout
    assert len(_trained_teachers(tmp_path)) == 1
    again = subprocess.run(command, env=student_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 teacher(s) trained" in again.stdout, again.stdout + again.stderr[-2000:]
    params = Params.from_file(str(STUDENT))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    assert list(reader.read(params.pop("train_data_path")))  # the trained teacher is found, nothing trained again
    assert len(_trained_teachers(tmp_path)) == 1


def test_a_student_config_of_type_teachers_first_trains_its_teacher_before_reading(student_env, tmp_path):
    overrides = json.dumps({"type": "structkd_teachers_first", "trainer": {"num_epochs": 1}})
    train_model_from_file(str(STUDENT), str(tmp_path / "student"), overrides=overrides)
    assert len(_trained_teachers(tmp_path)) == 1 and (tmp_path / "student" / "model.tar.gz").is_file()
    train_model_from_file(str(STUDENT), str(tmp_path / "again"), overrides=json.dumps({"trainer": {"num_epochs": 1}}))
    assert len(_trained_teachers(tmp_path)) == 1  # AllenNLP's default run finds it trained


def test_every_distillation_config_trains_its_teachers_first():
    """The shipped KD configs default their teachers to training configs: each says it trains them first."""
    from allennlp_structkd.config_defaults import CONFIGS

    for root, _, files in os.walk(CONFIGS):
        for name in sorted(f for f in files if f.endswith(".jsonnet")):
            config = Params.from_file(os.path.join(root, name)).as_dict(quiet=True)
            if config["dataset_reader"]["type"] == "structkd_teacher":
                assert config.get("type") == "structkd_teachers_first", name
            else:
                assert "type" not in config, name
