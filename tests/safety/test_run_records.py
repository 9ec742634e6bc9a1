"""A run's records as the runner finds them after a kill or an edit: a damaged metrics.json is not a finished
run and is named when read; an empty wall_seconds.json does not stop the wall-time table."""
import json
import os

import pytest

import experiments
from experiments.scores import RunRecordError, read_record, wall_seconds
from tests.test_experiments import fake_suite, whole_archive  # noqa: F401 (a fixture, and its helper)


def test_a_truncated_metrics_file_is_not_a_finished_run_and_is_kept_aside(tmp_path, monkeypatch):
    directory = tmp_path / "run"
    directory.mkdir()
    whole_archive(str(directory))
    (directory / "metrics.json").write_text('{"best_validation_f1-measure-overall": 0.5, "best_ep')
    (directory / "config.json").write_text("{}")
    (directory / "model_state_e0.th").write_bytes(b"x")
    assert not experiments.runner.run_is_finished(str(directory))
    calls = []
    monkeypatch.setattr(experiments.runner, "run_allennlp",
                        lambda *a, **k: calls.append(a) or type("R", (), {"returncode": 0})())
    experiments.runner.train_only("config.jsonnet", str(directory), {})
    assert calls and "--recover" in calls[0]
    assert (directory / "metrics.json.damaged-1").read_text().endswith('"best_ep')  # never deleted


def test_a_damaged_or_edited_record_is_an_error_naming_the_file_and_key(fake_suite):  # noqa: F811
    runs_dir = fake_suite / "runs"
    run = experiments.Run("base", "baseline_no_kd.jsonnet")
    directory = experiments.run_dir(str(runs_dir), "fake", run, 1)
    os.makedirs(directory)
    path = os.path.join(directory, "metrics.json")
    with open(path, "w") as handle:
        json.dump({"best_epoch": 1}, handle)  # the suite's metric removed
    spec = experiments.SUITES["fake"](False)
    with pytest.raises(RunRecordError, match=rf"{path} has no 'best_validation_f1-measure-overall'"):
        experiments.scores.run_scores(spec, "fake", run, [1], False, str(runs_dir))
    with open(path, "w") as handle:
        handle.write("{")
    with pytest.raises(RunRecordError, match=rf"{path} is not valid JSON"):
        read_record(path)


def test_an_empty_wall_time_record_falls_back_to_the_files_times(tmp_path, caplog):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.tar.gz").write_bytes(b"")
    (tmp_path / "wall_seconds.json").write_text("")
    with caplog.at_level("WARNING"):
        assert wall_seconds(str(tmp_path)) is not None
    assert "wall_seconds.json is not valid JSON" in caplog.text
