"""The experiment runner's bookkeeping: finished runs are not redone; tables, seeds and significance marks."""
import concurrent.futures
import dataclasses
import json
import os
import time

import pytest

import experiments
from experiments import Run, Suite, TeacherRef


@pytest.fixture
def fake_suite(monkeypatch, tmp_path):
    def suite(quick):
        return Suite(
            env={},
            runs=[
                Run("teacher", "teachers/crf_tagger.jsonnet", teacher=True),
                Run("base", "baseline_no_kd.jsonnet"),
                Run("kd", "struct_kd_case1a.jsonnet", {"TEACHER_ES": TeacherRef("teacher")}, baseline="base"),
                Run("missing", "baseline_top_wk.jsonnet", baseline="base"),
            ],
            metric="best_validation_f1-measure-overall",
            metric_name="dev F1",
            description="a fake suite",
        )

    monkeypatch.setitem(experiments.SUITES, "fake", suite)
    monkeypatch.setattr(experiments.layout, "REPO", str(tmp_path))
    return tmp_path


def finish(runs_dir, run, seed, value):
    directory = experiments.run_dir(str(runs_dir), "fake", run, seed)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "metrics.json"), "w") as handle:
        json.dump({"best_validation_f1-measure-overall": value, "best_epoch": 1}, handle)


def threads_instead_of_processes(max_workers, initializer=None):
    """A thread pool in the runner's place (the workers' SIGTERM handler is for processes: not installed here)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers)


def whole_archive(directory):
    """A complete (tiny) model.tar.gz: what a finished run has."""
    import io
    import tarfile

    with tarfile.open(os.path.join(directory, "model.tar.gz"), "w:gz") as archive:
        for name in ("config.json", "weights.th"):
            archive.addfile(tarfile.TarInfo(name), io.BytesIO(b""))


def test_table_means_seeds_and_significance(fake_suite):
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    runs_dir = fake_suite / "runs"
    finish(runs_dir, runs["teacher"], 1, 0.9)
    for seed, (base, kd) in enumerate([(0.70, 0.80), (0.71, 0.81), (0.69, 0.79)], start=1):
        finish(runs_dir, runs["base"], seed, base)
        finish(runs_dir, runs["kd"], seed, kd)
    text = experiments.write_table("fake", [1, 2, 3], False, str(runs_dir))
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert "90.00" in lines["teacher"] and "| 1 |" in lines["teacher"]
    assert "70.00 ± 1.00" in lines["base"]
    assert "80.00 ± 1.00 †" in lines["kd"]  # clearly better on every seed: almost stochastically dominant
    assert "(not run)" in lines["missing"]
    assert os.path.isfile(fake_suite / "docs" / "results.md")
    assert "a fake suite" in (fake_suite / "docs" / "results.md").read_text()


def test_wall_time_table_sums_finished_runs(fake_suite):
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    runs_dir = fake_suite / "runs"
    for seed, wall in ((1, 1800.0), (2, 5400.0)):
        finish(runs_dir, runs["base"], seed, 0.7)
        directory = experiments.run_dir(str(runs_dir), "fake", runs["base"], seed)
        with open(os.path.join(directory, "wall_seconds.json"), "w") as handle:
            json.dump({"wall_seconds": wall}, handle)
    experiments.main(["walltime", "--runs-dir", str(runs_dir)])  # the command line reaches it
    text = (fake_suite / "docs" / "results" / "walltime.md").read_text()
    assert "| fake | 2 | 2.0 h | 0.0 h | 1.0 h |" in text
    assert "| **all** | 2 | 2.0 h |" in text
    assert "Wall time of the full set" in (fake_suite / "docs" / "results.md").read_text()


def test_only_named_students_run(fake_suite, monkeypatch):
    trained = []
    monkeypatch.setattr(experiments.runner, "train_job", lambda job: trained.append(job[1]) or job[1])
    monkeypatch.setattr(experiments.runner.concurrent.futures, "ProcessPoolExecutor", threads_instead_of_processes)
    monkeypatch.setattr(experiments.report, "write_table", lambda *a, **k: "")
    experiments.run_suite("fake", [1], 1, False, str(fake_suite / "runs"), only=["kd"])
    assert sorted(os.path.basename(os.path.dirname(d)) for d in trained) == ["kd", "teacher"]
    trained.clear()  # a student without a teacher needs none trained
    experiments.run_suite("fake", [1], 1, False, str(fake_suite / "runs"), only=["base"])
    assert [os.path.basename(os.path.dirname(d)) for d in trained] == ["base"]
    with pytest.raises(SystemExit, match="none given"):
        experiments.run_suite("fake", [1], 1, False, str(fake_suite / "runs"), only=[])
    with pytest.raises(SystemExit, match="no run named 'nope'"):
        experiments.run_suite("fake", [1], 1, False, str(fake_suite / "runs"), only=["nope"])


def test_case_aliases_name_runs_of_their_suite(monkeypatch, tmp_path):
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path))
    for alias, (parent, runs) in experiments.ALIASES.items():
        assert set(runs) <= {r.name for r in experiments.SUITES[parent](False).runs}
        assert experiments.resolve(alias) == (parent, runs)
    assert experiments.resolve("case2a", ["MaxEnt: Token KD", "CRF: w/o KD"]) == ("case1a", ["MaxEnt: Token KD"])
    assert experiments.resolve("case4", ["x"]) == ("case4", ["x"])
    with pytest.raises(SystemExit, match="no run named 'CRF: w/o KD'"):  # none of the case's: an error, not all
        experiments.resolve("case2a", ["CRF: w/o KD"])
    # and the command line takes them: `table case2a` writes suite case1a's table
    written = []
    monkeypatch.setattr(experiments.report, "write_table", lambda suite, *a, **k: written.append(suite))
    experiments.main(["table", "case2a", "--runs-dir", str(tmp_path)])
    assert written == ["case1a"]


def test_finished_runs_are_not_redone(fake_suite, monkeypatch):
    calls = []
    monkeypatch.setattr(experiments.runner, "run_allennlp", lambda *a, **k: calls.append(a) or pytest.fail("retrained"))
    run = experiments.SUITES["fake"](False).runs[1]
    finish(fake_suite / "runs", run, 1, 0.7)
    directory = experiments.run_dir(str(fake_suite / "runs"), "fake", run, 1)
    whole_archive(directory)
    assert experiments.runner.train_job(("config", directory, {}, None)) == directory and not calls


def test_quick_runs_live_apart():
    run = Run("x", "c.jsonnet")
    assert experiments.run_dir("r", "s", run, 1, quick=True) != experiments.run_dir("r", "s", run, 1)


def test_runs_with_curve_points_are_plotted(fake_suite, monkeypatch):
    """Runs on growing amounts of unlabeled data become a plot linked from the suite's table."""
    def suite(quick):
        return Suite(env={}, metric="best_validation_f1-measure-overall", metric_name="dev F1", description="curves",
                     runs=[Run(f"{method} {n}", "c.jsonnet", curve=(method, n)) for method in ("Top-1", "KD") for n in (10, 20)])

    monkeypatch.setitem(experiments.SUITES, "fake", suite)
    runs_dir = fake_suite / "runs"
    for run in suite(False).runs:
        for seed in (1, 2):
            finish(runs_dir, run, seed, 0.5 + run.curve[1] / 100 + seed / 1000)
    text = experiments.write_table("fake", [1, 2], False, str(runs_dir))
    assert "![dev F1 against the amount of unlabeled data](fake_unlabeled.png)" in text
    image = fake_suite / "docs" / "results" / "fake_unlabeled.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 5000
    assert "](results/fake_unlabeled.png)" in (fake_suite / "docs" / "results.md").read_text()


def test_the_multilingual_suite_shares_case1a_runs(monkeypatch, tmp_path):
    """Runs of the same name in multilingual and case1a are one run: trained once, in case1a's folder."""
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path))
    multilingual = {r.name: r for r in experiments.SUITES["multilingual"](False).runs}
    case1a = {r.name: r for r in experiments.SUITES["case1a"](False).runs}
    shared = set(multilingual) & set(case1a)
    assert {"teacher_es", "teacher_nl", "CRF: w/o KD", "CRF: Top-WK KD", "CRF: Pos. KD"} <= shared
    for name in shared:
        assert multilingual[name].config == case1a[name].config
        assert experiments.run_dir("r", "multilingual", multilingual[name], 2) == experiments.run_dir("r", "case1a", case1a[name], 2)
    assert {"CRF: Emission", "CRF: Top-K", "CRF: Pos.+Top-WK"} <= set(multilingual) - shared


def test_a_failed_resume_leaves_the_run_as_it_was(tmp_path):
    """A resume that fails (here: its training data is gone) deletes nothing and says why."""
    from tests.conftest import FIXTURES

    directory = tmp_path / "run"
    directory.mkdir()
    finished = {"config.json": "{}", "model_state_e0.th": "weights", "training_state_e0.th": "state",
                "metrics_epoch_0.json": "{}"}
    for name, text in finished.items():
        (directory / name).write_text(text)
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(tmp_path / "gone"))
    with pytest.raises(RuntimeError, match="resuming failed.*left as it was"):
        experiments.train_only(str(FIXTURES / "configs" / "crf_tagger.jsonnet"), str(directory), env)
    assert sorted(os.listdir(directory)) == sorted(finished)
    for name, text in finished.items():
        assert (directory / name).read_text() == text


def test_a_run_killed_before_its_first_checkpoint_is_set_aside_not_deleted(tmp_path, monkeypatch):
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    launched = []

    class Done:
        returncode = 0

    def fake_run(verb, *command, **kwargs):
        launched.append(command)
        os.makedirs(command[command.index("-s") + 1], exist_ok=True)
        return Done()

    monkeypatch.setattr(experiments.runner, "run_allennlp", fake_run)
    experiments.train_only("config.jsonnet", str(directory), {})
    assert "--recover" not in launched[0] and "-f" not in launched[0]
    assert (tmp_path / "run.interrupted-1" / "config.json").read_text() == "{}"


def test_a_table_never_replaces_finished_results_with_fewer(fake_suite, capsys):
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    runs_dir = fake_suite / "runs"
    finish(runs_dir, runs["base"], 1, 0.70)
    finish(runs_dir, runs["kd"], 1, 0.80)
    experiments.write_table("fake", [1], False, str(runs_dir))
    page = fake_suite / "docs" / "results" / "fake.md"
    written, index = page.read_text(), (fake_suite / "docs" / "results.md").read_text()
    assert "70.00" in written and "80.00" in written
    experiments.write_table("fake", [1], False, str(fake_suite / "empty_runs"))  # no finished runs here
    assert page.read_text() == written and (fake_suite / "docs" / "results.md").read_text() == index
    assert "NOT WRITTEN" in capsys.readouterr().err
    finish(runs_dir, runs["teacher"], 1, 0.9)  # more results: the page is updated
    experiments.write_table("fake", [1], False, str(runs_dir))
    assert "90.00" in page.read_text()
    # a second seed: tabling seeds 1 and 2 updates the page; tabling seed 2 alone (as `run --seeds 2`
    # does after it trains) would drop seed 1 from the means, so the page is kept
    finish(runs_dir, runs["base"], 2, 0.72)
    finish(runs_dir, runs["kd"], 2, 0.84)
    experiments.write_table("fake", [1, 2], False, str(runs_dir))
    both = page.read_text()
    assert "71.00 ± 1.41" in both and "82.00 ± 2.83" in both
    capsys.readouterr()
    experiments.write_table("fake", [2], False, str(runs_dir))
    assert page.read_text() == both and "NOT WRITTEN" in capsys.readouterr().err


def test_the_guard_reads_seeds_by_column_on_a_page_with_a_speed_table(fake_suite, capsys):
    """A page with a second table that repeats each run name (the speed table) keeps its 3-seed figures."""
    page = fake_suite / "docs" / "results" / "fake.md"
    page.parent.mkdir(parents=True)
    page.write_text("| model | dev F1 | seeds | ε_min vs baseline | params | epochs (best) |\n|---|---|---|---|---|---|\n"
                    "| base | 70.00 ± 1.00 | 3 |  | 1,000 | [1, 1, 1] |\n\n"
                    "| model | sentences/s | speed-up | parameters | size ratio |\n|---|---|---|---|---|\n"
                    "| base | 500 | 1.00x | 1,000 | 1.00x |\n")
    before = page.read_text()
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    finish(fake_suite / "runs", runs["base"], 1, 0.69)
    experiments.write_table("fake", [1], False, str(fake_suite / "runs"))
    assert page.read_text() == before
    assert "'base': seeds 3 -> 1" in capsys.readouterr().err


def test_the_guard_keeps_every_filled_cell(fake_suite, capsys):
    """Re-tabling from runs whose archives are gone would blank the per-language and params cells: kept."""
    page = fake_suite / "docs" / "results" / "fake.md"
    page.parent.mkdir(parents=True)
    page.write_text("| model | dev F1 | seeds | ε_min vs baseline | params | epochs (best) |\n|---|---|---|---|---|---|\n"
                    "| base | 70.00 | 1 |  | 1,000 | [1] |\n")
    before = page.read_text()
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    finish(fake_suite / "runs", runs["base"], 1, 0.70)  # metrics only: no weights, no archive
    experiments.write_table("fake", [1], False, str(fake_suite / "runs"))
    assert page.read_text() == before and "'base': params" in capsys.readouterr().err


def test_a_marked_row_is_replaced_by_its_run(fake_suite):
    """A row name carrying a hand-added mark (a footnote ‡) is the run of that name: its re-run replaces it."""
    page = fake_suite / "docs" / "results" / "fake.md"
    page.parent.mkdir(parents=True)
    page.write_text("| model | dev F1 | seeds | ε_min vs baseline | params | epochs (best) |\n|---|---|---|---|---|---|\n"
                    "| base ‡ | 65.00 | 1 |  |  | [1] |\n\n‡ an earlier definition: re-run it\n")
    runs = {r.name: r for r in experiments.SUITES["fake"](False).runs}
    finish(fake_suite / "runs", runs["base"], 1, 0.70)
    experiments.write_table("fake", [1], False, str(fake_suite / "runs"))
    assert "| base | 70.00 | 1 |" in page.read_text() and "‡" not in page.read_text()


@pytest.mark.parametrize("argv, message", [
    (["run", "case1a", "--seeds", "1", "1"], "must not repeat"),
    (["run", "case1a", "--seeds", "-1"], "non-negative"),
    (["run", "case1a", "--workers", "0"], "at least 1"),
    (["table", "case1a", "--seeds", "2", "2"], "must not repeat"),
])
def test_bad_arguments_fail_before_anything_runs(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(experiments.runner, "run_suite", lambda *a, **k: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as raised:
        experiments.main(argv)
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_test_data_is_scored_in_a_column_of_its_own(fake_suite, monkeypatch, tmp_path):
    data, test = tmp_path / "data" / "conll2002", tmp_path / "test" / "conll2002"
    data.mkdir(parents=True)
    test.mkdir(parents=True)
    for name in ("esp.testa", "ned.testa"):
        (data / name).write_text("x O\n")
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path / "data"))
    spec = experiments.SUITES["fake"](False)
    dev = {"es": str(data / "esp.testa"), "nl": str(data / "ned.testa")}
    spec.env = {"TAGGING_DEV": json.dumps(dev)}
    monkeypatch.setitem(experiments.SUITES, "fake", lambda quick: spec)
    with pytest.raises(SystemExit, match="missing .*esp.testb"):
        experiments.test_data_path(spec, str(tmp_path / "test"))
    for name in ("esp.testb", "ned.testb"):
        (test / name).write_text("x O\n")
    expected = {"es": str(test / "esp.testb"), "nl": str(test / "ned.testb")}
    assert json.loads(experiments.test_data_path(spec, str(tmp_path / "test"))) == expected
    scored = []

    def fake_evaluate(directory, data_path, env, metric, name):
        scored.append((os.path.basename(directory), data_path, name))
        return {"seed_1": 0.60, "seed_2": 0.62}[os.path.basename(directory)]

    monkeypatch.setattr(experiments.evaluation, "evaluate_run", fake_evaluate)
    runs = {r.name: r for r in spec.runs}
    runs_dir = fake_suite / "runs"
    for seed in (1, 2):
        finish(runs_dir, runs["base"], seed, 0.70)
    text = experiments.write_table("fake", [1, 2], False, str(runs_dir), test_dir=str(tmp_path / "test"))
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    row = next(line for line in text.splitlines() if line.startswith("| base"))
    column = [c.strip() for c in header.split("|")].index("test")
    assert [c.strip() for c in row.split("|")][column] == "61.00 ± 1.41"
    assert "70.00" in row  # dev, the selection metric, is unchanged
    assert {(d, name) for d, _, name in scored} == {("seed_1", "test"), ("seed_2", "test")}
    assert all(json.loads(path) == expected for _, path, _ in scored)


def test_headline_suite_follows_the_fair_protocol(tmp_path, monkeypatch):
    from experiments.suite import PrepareOptions
    from tests.conftest import SAMPLE_DATA

    data = tmp_path / "data" / "conll2002"
    data.mkdir(parents=True)
    sentence = lambda i: f"w{i} B-PER\nx{i} O\n\n"  # noqa: E731
    for prefix in ("esp", "ned"):
        # sentence 1001 repeats a labeled sentence, 1002 a dev sentence
        train = [sentence(i) for i in range(1001)] + [sentence(5), sentence(9999)] + [sentence(i) for i in range(1003, 4200)]
        (data / f"{prefix}.train").write_text("".join(train))
        (data / f"{prefix}.testa").write_text(sentence(9999))
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STRUCTKD_ENCODER", str(SAMPLE_DATA / "tiny_bert"))
    monkeypatch.setattr(experiments.layout, "runs_root", lambda: str(tmp_path / "runs"))
    spec = experiments.SUITES["headline"](False)
    assert not (tmp_path / "runs").exists()  # building a suite writes nothing: its prepare steps do
    with pytest.raises(SystemExit, match=r"2 of the 3000 transfer sentences .* repeat a sentence of the labeled part \(1\), "
                                         r".*esp.testa \(1\).*--drop-overlapping-transfer"):
        spec.prepare[0](PrepareOptions())
    for step in spec.prepare:
        step(PrepareOptions(drop_overlap=True))
    runs = {r.name: r for r in spec.runs}
    labeled = json.loads(spec.env["TAGGING_TRAIN"])  # what w/o KD trains on
    # the teachers learn from the same labeled sentences as every student
    assert spec.env["TAGGING_TRAIN_ES"] == labeled["es"] and spec.env["TAGGING_TRAIN_NL"] == labeled["nl"]
    assert sum(r.teacher for r in runs.values()) == 2
    kd = runs["CRF: Struct. KD (Case 1a), transfer text"]
    transfer = json.loads(kd.env["TAGGING_TRAIN"])
    assert transfer["labeled"] == labeled and "TAGGING_TRAIN" not in runs["CRF: w/o KD"].env
    with open(labeled["es"]) as handle:
        assert handle.read().count("\n\n") == experiments.HEADLINE_LABELED
    with open(transfer["unlabeled"]["es"]) as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 2998 and lines[0] == "w1000 x1000" and "w5 x5" not in lines and "w9999 x9999" not in lines
    gold = json.loads(runs["CRF: w/o KD, gold labels of the transfer text"].env["TAGGING_TRAIN"])
    with open(gold["es"]) as handle:  # the labeled part and the same transfer sentences, with their gold labels
        assert handle.read().count("\n\n") == 1000 + 2998
    assert "gold" in runs["e5-piece CRF: w/o KD, gold labels of the transfer text"].name
    assert {r.baseline for r in runs.values() if not r.teacher} == {None, "CRF: w/o KD", "e5-piece CRF: w/o KD"}
    with open(spec.notes[0]) as handle:
        assert "2,998 transfer sentences (the next 3,000, less 2 that repeat" in handle.read()


def test_the_headline_summary_states_gain_gap_speed_and_size():
    spec = Suite(description="", env={}, metric="m", metric_name="F1",
                 runs=[Run("teacher_es", "t.jsonnet", teacher=True, lang="es"), Run("base", "b.jsonnet"),
                       Run("kd", "k.jsonnet", {"TEACHER_ES": TeacherRef("teacher_es")}, baseline="base")])
    all_scores = {"base": [60.0, 62.0], "kd": [70.0, 72.0]}
    languages = {"teacher_es": {"es": 80.0}, "base": {"es": 59.0}, "kd": {"es": 69.5}}
    speed = ([("teacher_es", {"sentences_per_second": 10.0, "parameters": 1_000_000}),
              ("base", {"sentences_per_second": 500.0, "parameters": 10_000}),
              ("kd", {"sentences_per_second": 400.0, "parameters": 20_000})], [["w"]])
    text = "\n".join(experiments.summary_lines(spec, all_scores, languages, speed, {"kd": 0.0}))
    assert "- kd: +10.00 F1 over base (ε_min 0.00)." in text
    assert "es dev: the teacher 80.00 F1; what the students keep of it: base 73.8%, kd 86.9%." in text
    assert "- kd runs 40.0x faster" in text and "50x smaller" in text


def test_frozen_encoder_features_are_encoded_before_any_run(fake_suite, monkeypatch):
    from allennlp_structkd import encode_features

    spec = experiments.SUITES["fake"](False)
    spec.encode_first = ["teachers/encoder_crf_tagger_es.jsonnet"]
    spec.env = {"FROZEN_ENCODER": "/somewhere/e5"}
    monkeypatch.setitem(experiments.SUITES, "fake", lambda quick: spec)
    events = []
    monkeypatch.setattr(encode_features, "encode_config", lambda config, env=None, **k: events.append(("encode", config, env["FROZEN_ENCODER"])))
    monkeypatch.setattr(experiments.runner, "train_job", lambda job: events.append(("train", job[1])) or job[1])
    monkeypatch.setattr(experiments.runner.concurrent.futures, "ProcessPoolExecutor", threads_instead_of_processes)
    monkeypatch.setattr(experiments.report, "write_table", lambda *a, **k: "")
    experiments.run_suite("fake", [1], 1, False, str(fake_suite / "runs"))
    assert events[0][0] == "encode" and events[0][1].endswith("teachers/encoder_crf_tagger_es.jsonnet")
    assert events[0][2] == "/somewhere/e5" and all(kind == "train" for kind, *_ in events[1:]) and len(events) > 1


def test_a_suite_is_checked_when_built():
    with pytest.raises(ValueError, match="names teacher 'nobody'"):
        Suite(description="", env={}, metric="m", metric_name="F1",
              runs=[Run("kd", "k.jsonnet", {"TEACHER_ES": TeacherRef("nobody")})])
    with pytest.raises(ValueError, match="unique"):
        Suite(description="", env={}, metric="m", metric_name="F1", runs=[Run("a", "k.jsonnet"), Run("a", "k.jsonnet")])
    assert Suite(description="", env={}, metric="best_validation_LAS", metric_name="LAS", runs=[]).eval_metric == "LAS"


def test_every_suite_builds_without_writing(monkeypatch, tmp_path):
    """Suites are pure: building each (with a data folder and encoders in place) writes no file."""
    import shutil

    from tests.conftest import FIXTURES, SAMPLE_DATA

    data = tmp_path / "data"  # laid out like ../shared/data, from the sample data and the fixtures
    for target, source in [("conll2002/esp.train", "toy_ner_es.train"), ("conll2002/esp.testa", "toy_ner_es.dev"),
                           ("conll2002/ned.train", "toy_ner_nl.train"), ("conll2002/ned.testa", "toy_ner_nl.dev"),
                           ("ptb_dep_sample/train.dp", "ptb.dp"), ("ptb_dep_sample/dev.dp", "ptb.dp")] + [
            (f"ud/{lang}/{split}.conllu", "ud_en_small.conllu") for lang in ("en", "de", "es", "nl") for split in ("train", "dev")]:
        (data / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy((FIXTURES / "data" if source == "ptb.dp" else SAMPLE_DATA) / source, data / target)
    monkeypatch.setattr(experiments.layout, "runs_root", lambda: str(tmp_path / "runs"))
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(data))
    monkeypatch.setenv("STRUCTKD_ENCODER", str(SAMPLE_DATA / "tiny_bert"))
    monkeypatch.setenv("STRUCTKD_KRESOURCE", str(SAMPLE_DATA / "tiny_bert"))
    for name, build in experiments.SUITES.items():
        suite = build(False)
        assert isinstance(suite, Suite) and suite.runs, name
        for run in suite.runs:
            assert all(isinstance(value, (str, TeacherRef)) for value in run.env.values()), name
    assert not (tmp_path / "runs").exists()


def test_a_teacher_of_another_suite_is_its_finished_run(tmp_path):
    runs_dir = str(tmp_path / "runs")
    teacher = TeacherRef("teacher: big", suite="other")
    with pytest.raises(SystemExit, match="run suite other first"):
        experiments.runner.teacher_archive_path(teacher, {}, runs_dir, False)
    for seed in (3, 2, 1):
        directory = experiments.run_dir(runs_dir, "other", Run("teacher: big", "t.jsonnet"), seed)
        os.makedirs(directory)
        open(os.path.join(directory, "model.tar.gz"), "w").close()  # cut short: not a whole archive
        if seed != 1:
            whole_archive(directory)
    found = experiments.runner.teacher_archive_path(teacher, {}, runs_dir, False)
    assert found.endswith(os.path.join("teacher__big", "seed_2", "model.tar.gz"))  # seed 1's archive is broken


def test_a_cached_evaluation_is_read_where_the_archive_is_gone(tmp_path, monkeypatch):
    """Runs made on another machine come back with their evaluations but without archives: the table reads them."""
    directory = tmp_path / "run" / "seed_1"
    directory.mkdir(parents=True)
    (directory / "evaluation_es.json").write_text(json.dumps({"f1-measure-overall": 0.75}))
    monkeypatch.setattr(experiments.runner, "run_allennlp", lambda *a, **k: pytest.fail("nothing to evaluate"))
    assert experiments.evaluation.evaluate_run(str(directory), "dev.es", {}, "f1-measure-overall", "es") == 0.75
    assert experiments.evaluation.evaluate_run(str(directory), "dev.nl", {}, "f1-measure-overall", "nl") is None  # no archive


def test_per_language_evaluations_run_in_parallel_before_the_table(fake_suite, monkeypatch):
    import threading

    spec = experiments.SUITES["fake"](False)
    spec.per_language = {"es": "dev.es", "nl": "dev.nl"}
    monkeypatch.setitem(experiments.SUITES, "fake", lambda quick: spec)
    runs = {r.name: r for r in spec.runs}
    runs_dir = fake_suite / "runs"
    for seed in (1, 2):
        finish(runs_dir, runs["base"], seed, 0.70)
    finish(runs_dir, runs["teacher"], 1, 0.9)
    calls, lock = [], threading.Lock()

    def fake_evaluate(directory, data, env, metric, name):
        with lock:
            calls.append((os.path.relpath(directory, runs_dir), name, threading.current_thread() is threading.main_thread()))
        if directory.endswith(os.path.join("base", "seed_2")) and name == "nl":
            return None  # e.g. its archive was not brought back
        return {"es": 0.6, "nl": 0.8}[name]

    monkeypatch.setattr(experiments.evaluation, "evaluate_run", fake_evaluate)
    serial = experiments.write_table("fake", [1, 2], False, str(runs_dir))
    calls.clear()
    parallel = experiments.write_table("fake", [1, 2], False, str(runs_dir), workers=4)
    assert parallel == serial
    # every (run, seed, language) was evaluated by the pool first; the table's own calls then read the results
    wanted = {(os.path.join(f"fake/{name}", f"seed_{seed}"), lang) for name, seeds in (("teacher", [1]), ("base", [1, 2]),
                                                                                        ("kd", [1, 2]), ("missing", [1, 2]))
              for seed in seeds for lang in ("es", "nl")}
    assert {(d, lang) for d, lang, main in calls if not main} == wanted
    row = next(line for line in parallel.splitlines() if line.startswith("| base"))
    assert "| 60.00 | 80.00 (1 of 2 seeds) |" in row  # a mean over fewer seeds than the row's says so


def test_parameters_are_counted_from_best_weights_or_the_archive(tmp_path):
    import io
    import tarfile

    import torch

    from experiments.scores import parameter_count

    state = {"linear.weight": torch.zeros(3, 4), "linear.bias": torch.zeros(3), "_buffer": torch.zeros(100)}
    only_archive = tmp_path / "archive"
    only_archive.mkdir()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with tarfile.open(only_archive / "model.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("weights.th")
        member.size = buffer.getbuffer().nbytes
        buffer.seek(0)
        archive.addfile(member, buffer)
    assert parameter_count(str(only_archive)) == "15"
    best = tmp_path / "best"
    best.mkdir()
    torch.save(state, best / "best.th")
    assert parameter_count(str(best)) == "15"
    assert parameter_count(str(tmp_path)) is None


def test_a_run_with_metrics_but_a_broken_archive_is_not_finished(tmp_path, monkeypatch, teacher_archive):
    """A kill while AllenNLP wrote model.tar.gz leaves metrics.json beside a 0-byte archive: the run is
    re-archived from its best weights (no training), or resumed when those are gone; never 'finished'."""
    import tarfile

    directory = tmp_path / "run"
    with tarfile.open(teacher_archive) as archive:
        archive.extractall(directory)
    os.replace(directory / "weights.th", directory / "best.th")
    (directory / "metrics.json").write_text(json.dumps({"best_validation_f1-measure-overall": 0.5}))
    (directory / "model.tar.gz").write_bytes(b"")
    assert not experiments.runner.archive_is_whole(str(directory))
    monkeypatch.setattr(experiments.runner, "run_allennlp", lambda *a, **k: pytest.fail("trained again"))
    experiments.runner.train_only("config.jsonnet", str(directory), {})
    assert experiments.runner.archive_is_whole(str(directory))
    from allennlp.models.archival import load_archive

    assert load_archive(str(directory / "model.tar.gz")).model is not None
    # truncated, and no best weights to archive again: resumed (--recover), the old metrics kept aside
    data = (directory / "model.tar.gz").read_bytes()
    (directory / "model.tar.gz").write_bytes(data[: len(data) // 2])
    os.remove(directory / "best.th")
    (directory / "model_state_e0.th").write_bytes(b"x")
    calls = []
    monkeypatch.setattr(experiments.runner, "run_allennlp", lambda *a, **k: calls.append(a) or type("R", (), {"returncode": 0})())
    experiments.runner.train_only("config.jsonnet", str(directory), {})
    assert calls and "--recover" in calls[0] and (directory / "metrics.json.without-archive").is_file()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_stopping_the_runner_stops_the_trainings_it_started(tmp_path, how):
    """A killed (or Ctrl-C'd) runner leaves no `allennlp train` running: each worker stops its own."""
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    script = tmp_path / "runner.py"
    script.write_text(f"""
import sys
import experiments
from allennlp_structkd import commands
from experiments import Run, Suite
commands.allennlp_command = lambda verb, *a: [sys.executable, "-c",
    "import os, time; open({str(pids)!r}, 'a').write(str(os.getpid()) + chr(10)); time.sleep(300)"]
experiments.SUITES["fake"] = lambda quick: Suite(env={{}}, runs=[Run("a", "baseline_no_kd.jsonnet"),
    Run("b", "baseline_no_kd.jsonnet"), Run("c", "baseline_no_kd.jsonnet")], metric="m", metric_name="m", description="d")
commands.exit_on_sigterm()
experiments.run_suite("fake", [1], 2, False, {str(tmp_path / "runs")!r})
""")
    # the experiments package is the checkout's tooling, imported from the repository root
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runner = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=repo),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.2)
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2  # two workers, each training one run
    runner.send_signal(getattr(signal, how))
    assert runner.wait(timeout=60) != 0
    time.sleep(0.5)
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert len(pids.read_text().split()) == 2  # the third run never started


def test_a_stop_request_is_noted_and_raised_where_the_runner_waits():
    """SIGINT / SIGTERM while the workers train raise only at the runner's check (never inside concurrent.futures,
    where an exception could leave a lock held and the pool's shutdown waiting forever); handlers come back after."""
    import signal

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    for signum, raised in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)):
        with experiments.runner.StopRequests() as stop:
            stop.check()  # nothing asked yet
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # the handler runs in the main thread, between bytecodes: it only notes the request
            assert stop.signum == signum
            with pytest.raises(raised):
                stop.check()
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_speed_says_when_there_is_nothing_to_measure(tmp_path, monkeypatch):
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match=r"suite case1a \(quick\) has no finished run of seed 1 .*run it first"):
        experiments.main(["speed", "case1a", "--quick", "--runs-dir", str(tmp_path)])


def test_a_quick_run_takes_one_seed_by_default(monkeypatch, tmp_path):
    called = {}
    monkeypatch.setattr(experiments.runner, "run_suite", lambda suite, seeds, *a, **k: called.update(seeds=seeds))
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path))
    experiments.main(["run", "case1a", "--quick", "--runs-dir", str(tmp_path)])
    assert called["seeds"] == [1]


def test_a_suite_page_states_the_wall_time_of_its_run(fake_suite, monkeypatch):
    runs_dir = fake_suite / "runs"

    def trained(job):
        config, directory, env, *_ = job
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "metrics.json"), "w") as handle:
            json.dump({"best_validation_f1-measure-overall": 0.5, "best_epoch": 0}, handle)
        return directory

    monkeypatch.setattr(experiments.runner, "train_job", trained)
    monkeypatch.setattr(experiments.runner.concurrent.futures, "ProcessPoolExecutor", threads_instead_of_processes)
    experiments.run_suite("fake", [1, 2], 2, False, str(runs_dir))
    page = (fake_suite / "docs" / "results" / "fake.md").read_text()
    assert "Wall time of `run fake` (encoder features, teachers, students, up to the table; --workers 2, seeds 1 2): 0 min" in page
    assert "earlier commands" not in page  # it trained every run
    # run again over finished runs: its wall time is that of a resume, and the page says so
    monkeypatch.setattr(experiments.runner, "archive_is_whole", lambda directory: True)
    experiments.run_suite("fake", [1, 2], 2, False, str(runs_dir))
    page = (fake_suite / "docs" / "results" / "fake.md").read_text()
    record = json.loads((runs_dir / "fake" / "suite_wall_seconds.json").read_text())
    assert record["runs"] == record["found_finished"] > 0
    assert (f"it trained 0 of the {record['runs']} runs, the others were finished by earlier commands "
            "(their time is in the sum above).") in page


def test_the_goal_lines_say_what_is_met_and_by_how_much_a_goal_is_missed(tmp_path):
    spec = Suite(description="", env={}, metric="m", metric_name="F1", goals={"share_of_teacher": 95.0, "kd_gain": 1.0, "speedup": 25.0},
                 runs=[Run("teacher_es", "t.jsonnet", teacher=True, lang="es"), Run("base", "b.jsonnet"),
                       Run("kd", "k.jsonnet", {"TEACHER_ES": TeacherRef("teacher_es")}, baseline="base"),
                       Run("base, gold labels of the transfer text", "b.jsonnet", baseline="base")])
    scores = {"base": [60.0, 60.0], "kd": [70.0, 72.0], "base, gold labels of the transfer text": [74.0, 74.0]}
    languages = {"teacher_es": {"es": 80.0}, "base": {"es": 60.0}, "kd": {"es": 72.0},
                 "base, gold labels of the transfer text": {"es": 76.0}}
    speed = ([("teacher_es", {"sentences_per_second": 10.0, "parameters": 1_000_000}),
              ("kd", {"sentences_per_second": 300.0, "parameters": 20_000})], [["w"]])
    text = "\n".join(experiments.report.goal_lines(spec, scores, languages, speed, {"kd": 0.0}, str(tmp_path / "none")))
    assert "es 90.0% (goal ≥ 95%: missed by 5.0%)" in text
    assert "keeps es 95.0% of the teachers" in text and "Distillation recovers es 75% of that reference's gain" in text
    assert "11.0 F1 (goal ≥ 1 F1: met), ε_min 0.00 (goal < 0.5: met)" in text
    assert "30.0x (goal ≥ 25x: met)" in text
    # a goal for the teacher itself: the score a reference teacher reached on the same data
    spec.goals.update(teacher_f1_es=82.5)
    text = "\n".join(experiments.report.goal_lines(spec, scores, languages, speed, {"kd": 0.0}, str(tmp_path / "none")))
    assert "its teachers' dev F1 (the mean of their seeds) above the reference teachers' of the description: es 80.0 F1 " \
           "(goal ≥ 82.5 F1: missed by 2.5 F1)." in text


def test_one_multilingual_teacher_is_every_languages_teacher_for_the_goals():
    spec = Suite(description="", env={}, metric="m", metric_name="F1", per_language={"es": "es.dev", "nl": "nl.dev"},
                 goals={"share_of_teacher": 95.0},
                 runs=[Run("teacher", "t.jsonnet", teacher=True), Run("base", "b.jsonnet"),
                       Run("kd", "k.jsonnet", {"TRANSFORMER_TEACHER": TeacherRef("teacher")}, baseline="base")])
    languages = {"teacher": {"es": 80.0, "nl": 50.0}, "base": {"es": 60.0, "nl": 40.0}, "kd": {"es": 76.0, "nl": 49.0}}
    text = "\n".join(experiments.report.goal_lines(spec, {"base": [50.0], "kd": [62.5]}, languages, None, {}, "none"))
    assert "es 95.0% (goal ≥ 95%: met); nl 98.0% (goal ≥ 95%: met)" in text
    assert experiments.report.teachers_by_language(dataclasses.replace(spec, runs=spec.runs[1:2])) == {}


def test_the_retention_suite_nests_its_transfer_sets_on_the_headline_protocol(tmp_path, monkeypatch):
    from experiments.suite import PrepareOptions
    from tests.conftest import SAMPLE_DATA

    data = tmp_path / "data" / "conll2002"
    data.mkdir(parents=True)
    sentence = lambda i: f"w{i} B-PER\nx{i} O\n\n"  # noqa: E731
    for prefix in ("esp", "ned"):  # 1,000 labeled, then 3,500 more, one of which repeats a labeled sentence
        (data / f"{prefix}.train").write_text("".join(sentence(i) for i in range(1000)) + sentence(7)
                                             + "".join(sentence(i) for i in range(1001, 4500)))
        (data / f"{prefix}.testa").write_text(sentence(9999))
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STRUCTKD_ENCODER", str(SAMPLE_DATA / "tiny_bert"))
    monkeypatch.setattr(experiments.layout, "runs_root", lambda: str(tmp_path / "runs"))
    spec = experiments.SUITES["retention"](False)
    for step in spec.prepare:
        step(PrepareOptions(drop_overlap=True))
    runs = {r.name: r for r in spec.runs}
    assert [r.name for r in spec.runs if r.teacher] == ["teacher_es: frozen e5 + BiLSTM-CRF", "teacher_nl: frozen e5 + BiLSTM-CRF"]
    kept = {}
    for name, files in spec.transfer_of.items():
        with open(files["es"]) as handle:
            kept[name] = handle.read().splitlines()
        run = runs[name]
        assert run.baseline == "e5-piece CRF: w/o KD" and run.curve is not None
        if "Struct. KD" in name:  # the KD run learns exactly the transfer text the page counts
            assert json.loads(run.env["TAGGING_TRAIN"])["unlabeled"] == files
    small, middle, every = (kept[f"e5-piece CRF: Struct. KD (Case 1a), {amount} transfer sentences"]
                            for amount in ("1,000", "3,000", "all remaining"))
    assert len(small) == 999 and len(middle) == 2999 and len(every) == 3499  # less the repeat
    assert every[:2999] == middle and middle[:999] == small and "w7 x7" not in every
    with open(spec.env["TAGGING_TRAIN_ES"]) as handle:  # the teachers learn the same 1,000 labeled sentences
        assert handle.read().count("\n\n") == 1000
    gold = json.loads(runs["e5-piece CRF: w/o KD, gold labels of 3,000 transfer sentences"].env["TAGGING_TRAIN"])
    with open(gold["nl"]) as handle:
        assert handle.read().count("\n\n") == 1000 + 2999
    notes = [open(note).read() for note in spec.notes]
    assert any("3,499 transfer sentences (the next 3,500, every remaining sentence, less 1 that repeat" in n for n in notes)


def test_the_retention_page_states_each_curve_and_where_it_reaches_the_goal(tmp_path):
    from experiments.report import crossing, retention_lines

    transfer = {}
    for size in (10, 30):
        transfer[size] = {lang: str(tmp_path / f"{lang}{size}.txt") for lang in ("es", "nl")}
        for path in transfer[size].values():
            with open(path, "w") as handle:
                handle.write("a b\n" * size)
    runs = [Run("teacher_es", "t.jsonnet", teacher=True, lang="es"), Run("teacher_nl", "t.jsonnet", teacher=True, lang="nl"),
            Run("base", "b.jsonnet")]
    for size in (10, 30):
        runs.append(Run(f"kd {size}", "k.jsonnet", {"TEACHER_ES": TeacherRef("teacher_es")}, baseline="base",
                        curve=("Struct. KD", size)))
    spec = Suite(description="", env={}, metric="m", metric_name="F1", runs=runs, goals={"share_of_teacher": 95.0},
                 transfer_of={f"kd {size}": transfer[size] for size in (10, 30)})
    scores = {"teacher_es": {"es": 0.80, "nl": 0.5}, "teacher_nl": {"es": 0.5, "nl": 0.60},
              "base": {"es": 0.64, "nl": 0.48}, "kd 10": {"es": 0.72, "nl": 0.54}, "kd 30": {"es": 0.78, "nl": 0.555}}
    teachers_of = {"es": runs[0], "nl": runs[1]}
    lines = retention_lines("fake", spec, scores, teachers_of, str(tmp_path / "pages"), False)
    text = "\n".join(lines)
    # es: 80.0% at 0, 90.0% at 10, 97.5% at 30 -> 95% is crossed between 10 and 30, at 10 + 5/7.5 * 20
    assert "- Struct. KD, es: 0: 80.0%, 10: 90.0%, 30: 97.5%; it reaches 95% at about 23 transfer sentences" in text
    # nl: 80.0%, 90.0%, 92.5%: short by 2.5; +2.5 points over a tripling: 95% projected at 30 * 3 = 90 sentences
    assert "- Struct. KD, nl: 0: 80.0%, 10: 90.0%, 30: 92.5%; it stays below 95%: its last point (30 sentences) keeps 92.5%, 2.5 short" in text
    assert "projects 95% at about 90 sentences" in text
    assert (tmp_path / "pages" / "fake_share_of_teacher.png").is_file()
    assert crossing([(0.0, 96.0), (5.0, 97.0)], 95.0) == "is at or above 95% from its first point"
    assert "do not rise" in crossing([(0.0, 80.0), (5.0, 90.0), (10.0, 89.0)], 95.0)


def test_a_transfer_sentence_longer_than_the_transfer_reader_takes_is_left_out_of_both_parts(tmp_path):
    from experiments.suite import PrepareOptions
    from experiments.suites_ner import TRANSFER_MAX_WORDS, FairSplit

    long = "".join(f"w{i} O\n" for i in range(TRANSFER_MAX_WORDS + 1)) + "\n"
    source = tmp_path / "train"
    source.write_text("a B-PER\n\n" + "b O\n\n" + long + "c O\nd O\n\n")
    split = FairSplit(str(source), 1, None, (), str(tmp_path / "out"), "es")  # None: every remaining sentence
    split(PrepareOptions())
    with open(split.path("transfer")) as handle:
        assert handle.read().splitlines() == ["b", "c d"]
    with open(split.path("gold")) as handle:  # the reference row learns the same sentences
        assert handle.read().count("\n\n") == 1 + 2
    with open(split.path("note")) as handle:
        assert f"2 transfer sentences (the next 3, every remaining sentence, less 1 longer than {TRANSFER_MAX_WORDS} words)" \
            in handle.read()


def test_help_and_listing_start_without_loading_allennlp_or_torch():
    import subprocess
    import sys

    probe = ("import sys, contextlib, io\n"
             "from experiments.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
             "    main(['list'])\n"
             "assert 'headline:' in out.getvalue(), out.getvalue()\n"
             "import experiments.demo_job\n"
             "heavy = sorted(m for m in ('torch', 'allennlp', 'allennlp_structkd', 'transformers') if m in sys.modules)\n"
             "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=experiments.layout.REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_tooling_and_the_library_agree_on_the_checkout():
    from allennlp_structkd import paths

    assert experiments.layout.REPO == paths.REPO and experiments.layout.CONFIGS == paths.CONFIGS


def test_the_tooling_runs_from_any_folder(tmp_path):
    """``make install`` puts the checkout on the venv's path: ``python -m experiments`` from elsewhere lists the suites."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "experiments", "list"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "headline:" in result.stdout
