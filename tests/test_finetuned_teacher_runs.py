"""Suites whose teachers are Hugging Face token classifiers fine-tuned by experiments/finetune_token_classifier.py:
the runner fine-tunes each teacher once per seed, scores it as students read it, and gives each student the
teachers of its own seed."""
import json
import os

import pytest

import experiments
from experiments import Run, Suite, TeacherRef
from experiments.suite import FineTune
from tests.conftest import FIXTURES, SAMPLE_DATA

TRAIN = str(FIXTURES / "data" / "ner_es.conll")


def threads_instead_of_processes(max_workers, initializer=None):
    import concurrent.futures

    return concurrent.futures.ThreadPoolExecutor(max_workers)


@pytest.fixture
def finetuned_suite(monkeypatch, tmp_path):
    tune = FineTune(str(SAMPLE_DATA / "tiny_bert"), TRAIN, TRAIN, epochs=1, batch_size=2)

    def suite(quick):
        return Suite(env={}, runs=[Run("teacher: tiny", "", teacher=True, lang="es", finetune=tune),
                                   Run("kd", "struct_kd_case1a.jsonnet", {"TEACHER_ES": TeacherRef("teacher: tiny")})],
                     metric="best_validation_f1-measure-overall", metric_name="dev F1", description="fine-tuned teachers",
                     teacher_seeds=True)

    monkeypatch.setitem(experiments.SUITES, "tuned", suite)
    monkeypatch.setattr(experiments.runner.concurrent.futures, "ProcessPoolExecutor", threads_instead_of_processes)
    monkeypatch.setattr(experiments.report, "write_table", lambda *a, **k: "")
    return tmp_path / "runs"


def test_each_seed_fine_tunes_its_teacher_once_and_its_students_read_that_one(finetuned_suite, monkeypatch):
    from experiments.evaluation import score_token_classifier
    from experiments.scores import parameter_count

    students = {}
    monkeypatch.setattr(experiments.runner, "train_only",
                        lambda config, directory, env: students.setdefault(directory, env["TEACHER_ES"]) and directory)
    experiments.run_suite("tuned", [1, 2], 1, False, str(finetuned_suite))
    spec = experiments.SUITES["tuned"](False)
    teacher, kd = spec.runs
    for seed in (1, 2):
        directory = experiments.run_dir(str(finetuned_suite), "tuned", teacher, seed)
        folder = os.path.join(directory, "model")
        assert json.load(open(os.path.join(folder, "training.json")))["seed"] == seed
        # a student of seed s distils from the teacher of seed s: its Hugging Face folder
        assert students[experiments.run_dir(str(finetuned_suite), "tuned", kd, seed)] == folder
        metrics = json.load(open(os.path.join(directory, "metrics.json")))
        assert metrics["best_validation_f1-measure-overall"] == score_token_classifier(folder, TRAIN)["f1-measure-overall"]
        assert metrics["best_epoch"] == 0 and experiments.runner.run_is_finished(directory)
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(folder)
        assert parameter_count(directory) == f"{sum(p.numel() for p in model.parameters()):,}"
    # run again: nothing is fine-tuned again
    monkeypatch.setattr(experiments.runner.subprocess, "run", lambda *a, **k: pytest.fail("fine-tuned again"))
    experiments.run_suite("tuned", [1, 2], 1, False, str(finetuned_suite))


def test_a_teacher_is_scored_by_its_best_label_at_each_words_first_piece(tmp_path):
    import torch

    from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher
    from experiments.evaluation import score_token_classifier, span_f1
    from experiments.finetune_token_classifier import finetune, read_sentences

    sentences = read_sentences(TRAIN, "conll")
    finetune(str(SAMPLE_DATA / "tiny_bert"), sentences, [], str(tmp_path / "model"), epochs=1, batch_size=2, seed=3,
             progress=False)
    scores = score_token_classifier(str(tmp_path / "model"), TRAIN)
    teacher = HuggingFaceTeacher(str(tmp_path / "model"), -1, str(tmp_path / "cache"), "BIO")
    labels = teacher.mapping.teacher_labels
    guesses = [[labels[i] for i in lp.argmax(-1).tolist()] for lp in teacher.word_log_probs([w for w, _ in sentences])]
    # the model's own softmax at each word's first piece, argmax
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    model = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "model")).eval()
    for (words, _), guess in zip(sentences, guesses):
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            best = model(**encoded).logits[0].argmax(-1).tolist()
        firsts = [encoded.word_ids().index(i) for i in range(len(words))]
        assert guess == [model.config.id2label[best[p]] for p in firsts]
    gold = [tags for _, tags in sentences]
    words = sum(len(tags) for tags in gold)
    assert scores["accuracy"] == sum(p == g for ps, gs in zip(guesses, gold) for p, g in zip(ps, gs)) / words
    assert scores["f1-measure-overall"] == span_f1(gold, guesses)


def test_span_f1_reads_spans_as_conlleval_does():
    from experiments.evaluation import span_f1

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # one right span (PER); LOC typed wrong; an I-ORG after O starts an ORG span, as conlleval reads it: right
    guessed = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O"]]
    assert span_f1(gold, guessed) == pytest.approx(2 / 3)
    assert span_f1(gold, gold) == 1.0 and span_f1([["O"]], [["O"]]) == 0.0


def test_the_hf_teacher_suite_follows_the_headline_protocol(tmp_path, monkeypatch):
    data = tmp_path / "data" / "conll2002"
    data.mkdir(parents=True)
    for prefix in ("esp", "ned"):
        (data / f"{prefix}.train").write_text("".join(f"w{i} B-PER\nx{i} O\n\n" for i in range(4200)))
        (data / f"{prefix}.testa").write_text("d B-PER\n\n")
    monkeypatch.setenv("STRUCTKD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STRUCTKD_ENCODER", str(SAMPLE_DATA / "tiny_bert"))
    monkeypatch.setattr(experiments.layout, "runs_root", lambda: str(tmp_path / "runs"))
    spec, headline = experiments.SUITES["hf_teacher"](False), experiments.SUITES["headline"](False)
    labeled = json.loads(spec.env["TAGGING_TRAIN"])
    teachers = [r for r in spec.runs if r.teacher]
    # one fine-tuned teacher a language, on that language's labeled sentences: the students' labeled data
    assert [(r.lang, r.finetune.train, r.finetune.epochs) for r in teachers if r.finetune] == [
        ("es", labeled["es"], 6), ("nl", labeled["nl"], 6)]
    assert spec.teacher_seeds and spec.seeds_of(teachers[0], [1, 2, 3]) == [1, 2, 3]
    kd = next(r for r in spec.runs if "Case 3" in r.name)
    assert json.loads(kd.env["TAGGING_TRAIN"])["labeled"] == labeled
    assert {k: v for k, v in kd.env.items() if isinstance(v, TeacherRef)} == {
        "TEACHER_ES": TeacherRef(teachers[0].name), "TEACHER_NL": TeacherRef(teachers[1].name)}
    # the same parts as the headline's: as many labeled and transfer sentences from the same file
    assert [(s.source, s.labeled, s.transfer) for s in spec.prepare] == [(s.source, s.labeled, s.transfer)
                                                                        for s in headline.prepare]
    with pytest.raises(ValueError, match="a fine-tuned token classifier is a teacher run"):
        Suite(env={}, runs=[Run("x", "", finetune=teachers[0].finetune)], metric="m", metric_name="m", description="d")
