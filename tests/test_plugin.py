"""The package as AllenNLP users meet it: registration, the command line, plugins, config defaults."""
import json
import os
import subprocess
import sys

import pytest
from allennlp.data import DatasetReader
from allennlp.models import Model
from allennlp.training.callbacks.callback import TrainerCallback

import allennlp_structkd  # noqa: F401  (registers every component)
from allennlp_structkd.kd import KDLoss
from tests.conftest import FIXTURES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_component_is_registered_on_import():
    for name in ("structkd_conll_ner", "structkd_conllu", "structkd_ptb_dependency", "structkd_unlabeled_text", "structkd_teacher"):
        assert name in DatasetReader.list_available()
    for name in ("structkd_crf_tagger", "structkd_maxent_tagger", "structkd_biaffine_parser",
                 "structkd_second_order_parser", "structkd_seq_label_parser", "structkd_span_ner"):
        assert name in Model.list_available()
    for name in ("structural", "posterior", "emission", "token", "top_k", "top_wk", "top1", "posterior+top_wk", "mixture"):
        assert name in KDLoss.list_available()
    assert {"structkd_teacher_annealing", "structkd_xtremedistil_stages"} <= set(TrainerCallback.list_available())


def test_config_defaults_point_at_existing_fixtures():
    from allennlp_structkd.config_defaults import DEFAULTS

    for name in ("TAGGING_TRAIN", "TAGGING_DEV", "TAGGING_UNLABELED"):
        for path in json.loads(DEFAULTS[name]).values():
            assert os.path.isfile(path), path
    for name in ("TEACHER_ES", "TEACHER_NL", "TEACHER", "MAXENT_TEACHER", "BIAFFINE_TEACHER", "SECOND_ORDER_TEACHER",
                 "SPAN_TEACHER", "PARSE_TRAIN", "TRANSFORMER_MODEL"):
        assert os.path.exists(DEFAULTS[name]), name


@pytest.mark.parametrize("how", ["include-package", "plugins-file"])
def test_allennlp_train_from_the_command_line(tmp_path, how):
    """`allennlp train` works with --include-package and, without it, through .allennlp_plugins."""
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(FIXTURES / "data"))
    command = [sys.executable, "-m", "allennlp", "train", str(FIXTURES / "configs" / "crf_tagger.jsonnet"),
               "-s", str(tmp_path / "run"), "-o", json.dumps({"trainer": {"num_epochs": 1, "optimizer": "adam"}})]
    if how == "include-package":
        command += ["--include-package", "allennlp_structkd"]
        cwd = str(tmp_path)
    else:
        cwd = REPO  # holds the .allennlp_plugins file
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "run" / "model.tar.gz")
    assert "nltk" not in result.stderr.lower()  # no failed nltk downloads on import


def test_every_training_config_parses():
    from allennlp.common import Params

    configs = []
    for root, _, files in os.walk(os.path.join(REPO, "training_configs")):
        configs += [os.path.join(root, f) for f in files if f.endswith(".jsonnet")]
    assert len(configs) >= 14
    for path in configs:
        params = Params.from_file(path)
        assert "model" in params and "trainer" in params, path
        # the trainer that rejects unknown settings (AllenNLP's own ignores them)
        assert params["trainer"]["type"] == "structkd_gradient_descent", path
        assert params["evaluation"]["type"] == "structkd_evaluator", path  # `allennlp evaluate` prints its metrics
        assert params["data_loader"]["type"] == "structkd_data_loader", path  # an unknown label names its line


def _kd_configs():
    from allennlp.common import Params

    found = []
    for root, _, files in os.walk(os.path.join(REPO, "training_configs")):
        for name in sorted(files):
            if name.endswith(".jsonnet"):
                path = os.path.join(root, name)
                if Params.from_file(path).as_dict(quiet=True)["dataset_reader"].get("type") == "structkd_teacher":
                    found.append(path)
    return found


def test_every_field_of_the_teacher_reader_can_be_overridden():
    """
    AllenNLP's -o replaces an object given as a nested dict and merges dotted keys: the dotted form
    reaches every field of the teacher-wrapping reader, and leaves the rest of it as written.
    """
    from allennlp.common import Params

    configs = _kd_configs()
    assert len(configs) >= 8
    for path in configs:
        written = Params.from_file(path).as_dict(quiet=True)["dataset_reader"]
        overrides = {"dataset_reader.batch_size": 7, "dataset_reader.base_reader.strict": False,
                     "dataset_reader.objective.temperature": 2.0, "dataset_reader.cache_directory": "/tmp/elsewhere"}
        reader = Params.from_file(path, json.dumps(overrides)).as_dict(quiet=True)["dataset_reader"]
        assert reader["batch_size"] == 7 and reader["base_reader"]["strict"] is False, path
        assert reader["objective"]["temperature"] == 2.0 and reader["cache_directory"] == "/tmp/elsewhere", path
        assert reader["type"] == "structkd_teacher" and reader["teachers"] == written["teachers"], path
        assert {k: v for k, v in reader["objective"].items() if k != "temperature"} == \
            {k: v for k, v in written["objective"].items() if k != "temperature"}, path


def test_allennlp_train_of_a_kd_config_with_overrides(teacher_archive, tmp_path):
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(FIXTURES / "data"), STRUCTKD_TEST_TEACHER=teacher_archive,
               STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
               STRUCTKD_TEST_CACHE=str(tmp_path / "cache"))
    overrides = {"dataset_reader.batch_size": 3, "dataset_reader.objective.temperature": 2.0, "trainer.num_epochs": 1}
    command = [sys.executable, "-m", "allennlp", "train", str(FIXTURES / "configs" / "kd_student.jsonnet"),
               "-s", str(tmp_path / "run"), "--include-package", "allennlp_structkd", "-o", json.dumps(overrides)]
    result = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run" / "config.json") as handle:
        config = json.load(handle)
    assert config["dataset_reader"]["batch_size"] == 3 and config["dataset_reader"]["objective"]["temperature"] == 2.0
    assert config["dataset_reader"]["base_reader"]["type"] == "structkd_conll_ner"
    assert os.path.isfile(tmp_path / "run" / "model.tar.gz")


def test_one_setting_chooses_the_device_of_training_and_teacher_annotation(monkeypatch):
    """No config pins the CPU: STRUCTKD_CUDA_DEVICE (default empty: the first GPU torch sees, else the CPU) drives both."""
    from allennlp.common import Params

    for root, _, files in os.walk(os.path.join(REPO, "training_configs")):
        for name in files:
            if name.endswith(("sonnet", ".json")):  # the configs (sample_data/ beside them holds data and a model)
                with open(os.path.join(root, name)) as handle:
                    assert "cuda_device: -1" not in handle.read(), name
    for path in _kd_configs() + [os.path.join(REPO, "training_configs", "teachers", "crf_tagger_es.jsonnet")]:
        config = Params.from_file(path).as_dict(quiet=True)
        assert config["trainer"].get("cuda_device") is None, path
        assert config["dataset_reader"].get("cuda_device") is None, path
        monkeypatch.setenv("STRUCTKD_CUDA_DEVICE", "1")
        config = Params.from_file(path).as_dict(quiet=True)
        assert config["trainer"]["cuda_device"] == 1, path
        if config["dataset_reader"]["type"] == "structkd_teacher":
            assert config["dataset_reader"]["cuda_device"] == 1, path
        monkeypatch.setenv("STRUCTKD_CUDA_DEVICE", "")
    import experiments

    assert experiments.cuda_device_of({"STRUCTKD_CUDA_DEVICE": "-1"}) == "-1"
    assert experiments.cuda_device_of({}) == ("0" if __import__("torch").cuda.is_available() else "-1")


def _clean_environment():
    from allennlp_structkd.config_defaults import DEFAULTS

    return {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("STRUCTKD_TEST")}


def test_importing_the_library_leaves_the_environment_unchanged():
    """Nothing global: the environment, the warning filters (AllenNLP's own imports add theirs), AllenNLP's state."""
    code = ("import os, json, warnings; before = dict(os.environ); "
            "import allennlp.data, allennlp.models, allennlp.training, allennlp.predictors, allennlp.evaluation, spacy; "
            "filters = list(warnings.filters); "
            "import allennlp_structkd, structkd_spacy, structkd_spacy.component; "
            "from allennlp.data.fields import SequenceLabelField; "
            "print(json.dumps([sorted(set(os.environ.items()) ^ set(before.items())), warnings.filters == filters, "
            "sorted(SequenceLabelField._already_warned_namespaces)]))")
    result = subprocess.run([sys.executable, "-c", code], env=_clean_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[], True, []]


def test_a_project_command_prints_no_third_party_warnings():
    result = subprocess.run([sys.executable, "-m", "experiments", "list"], cwd=REPO, env=_clean_environment(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "headline" in result.stdout and "Warning" not in result.stderr, result.stderr[-2000:]


def test_a_project_config_trains_as_written_from_the_command_line_with_no_variables_set(tmp_path):
    """The allennlp command line gets the configs' defaults from the plugin import: no variable needs setting."""
    command = [sys.executable, "-m", "allennlp", "train", os.path.join(REPO, "training_configs", "baseline_no_kd.jsonnet"),
               "-s", str(tmp_path / "run"), "--include-package", "allennlp_structkd", "-o", json.dumps({"trainer.num_epochs": 1})]
    result = subprocess.run(command, cwd=str(tmp_path), env=_clean_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "run" / "model.tar.gz")


def test_the_students_sgd_recipe(monkeypatch, tmp_path):
    """STRUCTKD_OPTIMIZER=sgd gives students the papers' SGD recipe, leaves teachers on Adam (so a cached
    teacher serves both), rejects anything else, and trains as written."""
    from allennlp.commands.train import train_model_from_file
    from allennlp.common import Params
    from allennlp.common.checks import ConfigurationError

    student = os.path.join(REPO, "training_configs", "baseline_no_kd.jsonnet")
    teacher = os.path.join(REPO, "training_configs", "teachers", "crf_tagger_es.jsonnet")
    assert Params.from_file(student).as_dict(quiet=True)["trainer"]["optimizer"] == {"type": "adam", "lr": 0.01}
    monkeypatch.setenv("STRUCTKD_OPTIMIZER", "sgd")
    trainer = Params.from_file(student).as_dict(quiet=True)["trainer"]
    assert trainer["optimizer"] == {"type": "sgd", "lr": 0.1}
    assert trainer["learning_rate_scheduler"] == {"type": "structkd_reduce_on_plateau", "mode": "max", "factor": 0.5, "patience": 3}
    assert Params.from_file(teacher).as_dict(quiet=True)["trainer"]["optimizer"]["type"] == "adam"
    monkeypatch.setenv("STRUCTKD_EPOCHS", "2")
    train_model_from_file(student, str(tmp_path / "sgd"))
    with open(tmp_path / "sgd" / "metrics.json") as handle:
        assert json.load(handle)["epoch"] == 1
    import torch

    state = torch.load(tmp_path / "sgd" / "training_state_e2_b0.th", weights_only=False)
    assert state["learning_rate_scheduler"]["patience"] == 3  # the scheduler ran and is checkpointed
    monkeypatch.setenv("STRUCTKD_OPTIMIZER", "adagrad")
    with pytest.raises((ConfigurationError, RuntimeError), match="STRUCTKD_OPTIMIZER must be"):
        Params.from_file(student)


def test_the_earlier_ner_names_of_the_tagging_variables_still_work(monkeypatch, caplog):
    """TAGGING_* were called NER_* (they carry UPOS data too): an old name still reaches the configs."""
    from allennlp_structkd import config_defaults

    monkeypatch.delenv("TAGGING_TRAIN", raising=False)
    monkeypatch.setenv("NER_TRAIN", "/data/old-name.conll")
    with caplog.at_level("WARNING"):
        assert config_defaults.ext_vars()["TAGGING_TRAIN"] == "/data/old-name.conll"
    assert "NER_TRAIN is now called TAGGING_TRAIN" in caplog.text
    monkeypatch.setenv("TAGGING_TRAIN", "/data/new-name.conll")  # the new name wins
    assert "TAGGING_TRAIN" not in config_defaults.ext_vars()


def test_allennlp_evaluate_prints_its_metrics_and_names_an_unknown_label(tmp_path):
    """Without --output-file, AllenNLP's own evaluator prints no final metrics; a label the model never saw was a bare
    KeyError. An archive of a project config does both right."""
    from allennlp.commands.train import train_model_from_file

    train_model_from_file(os.path.join(REPO, "training_configs", "baseline_no_kd.jsonnet"), str(tmp_path / "run"),
                          overrides=json.dumps({"trainer.num_epochs": 1}))
    archive = str(tmp_path / "run" / "model.tar.gz")
    from allennlp_structkd.config_defaults import DEFAULTS

    def evaluate(data):
        return subprocess.run([sys.executable, "-m", "allennlp", "evaluate", archive, data, "--include-package",
                               "allennlp_structkd"], capture_output=True, text=True, timeout=300)

    result = evaluate(json.loads(DEFAULTS["TAGGING_DEV"])["es"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"f1-measure-overall"' in result.stdout and "Metrics:" in result.stdout
    unseen = tmp_path / "unseen.conll"
    unseen.write_text("Juan B-PER\nvisitó O\n\nla O\nFIFA B-SPORTSORG\n\n", encoding="utf-8")
    result = evaluate(str(unseen))
    assert result.returncode != 0
    assert f"{unseen}, line 4: label 'S-SPORTSORG' (field 'tags') is not a label of the model" in result.stderr


def test_allennlp_predict_prints_predictions_not_info_logs(monkeypatch):
    import logging

    from allennlp_structkd.command_line import quiet_predict_logs

    root = logging.getLogger()
    level = root.level
    monkeypatch.delenv("ALLENNLP_LOG_LEVEL", raising=False)
    monkeypatch.delenv("ALLENNLP_DEBUG", raising=False)
    try:
        root.setLevel(logging.INFO)
        quiet_predict_logs(["allennlp", "train", "c.jsonnet"])
        assert root.level == logging.INFO  # training keeps AllenNLP's log
        quiet_predict_logs(["allennlp", "predict", "model.tar.gz", "in.jsonl"])
        assert root.level == logging.WARNING
        root.setLevel(logging.INFO)
        monkeypatch.setenv("ALLENNLP_LOG_LEVEL", "INFO")  # asked for: kept
        quiet_predict_logs(["allennlp", "predict", "model.tar.gz", "in.jsonl"])
        assert root.level == logging.INFO
    finally:
        root.setLevel(level)
