"""spaCy's own NER as a suite's row: trained by `spacy train`, scored, counted and timed as the other rows."""
import json
import os

import pytest

from experiments.spacy_baseline import (
    best_epoch,
    gold_docs,
    parameters_of,
    pipeline_is_whole,
    pipeline_of,
    score_pipeline,
    span_tags,
    train_run,
)
from experiments.suite import Run, SpacyTrain, Suite

SENTENCES = [
    (["Juan", "vive", "en", "Madrid", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
    (["La", "ONU", "abrió", "en", "Nueva", "York", "."], ["O", "B-ORG", "O", "O", "B-LOC", "I-LOC", "O"]),
    (["María", "López", "trabaja", "para", "Telefónica", "."], ["B-PER", "I-PER", "O", "O", "B-ORG", "O"]),
    (["Ayer", "llovió", "mucho", "."], ["O", "O", "O", "O"]),
]


def write_conll(path, sentences):
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(words, tags)) + "\n" for words, tags in sentences),
                    encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny pipeline, trained for a few steps (the suites keep spaCy's defaults)."""
    folder = tmp_path_factory.mktemp("spacy_run")
    train = write_conll(folder / "train.conll", SENTENCES * 3)
    dev = write_conll(folder / "dev.conll", SENTENCES)
    spec = SpacyTrain(train=json.dumps({"es": train}), dev=json.dumps({"es": dev}),
                      overrides=("--training.max_steps", "40", "--training.eval_frequency", "10"))
    directory = str(folder / "seed_1")
    env = dict(os.environ, STRUCTKD_SEED="1", OMP_NUM_THREADS="1")
    train_run(spec, directory, env)
    return spec, directory, env, dev


def test_gold_docs_carry_the_spans_of_the_tags():
    import spacy

    docs = gold_docs(spacy.blank("xx").vocab, SENTENCES)
    assert [span_tags(doc) for doc in docs] == [tags for _, tags in SENTENCES]
    # an I- that continues no span starts one, as the span F1 reads it
    (doc,) = gold_docs(spacy.blank("xx").vocab, [(["a", "b", "c"], ["O", "I-LOC", "I-LOC"])])
    assert [(span.start, span.end, span.label_) for span in doc.ents] == [(1, 3, "LOC")]


def test_a_trained_run_is_scored_as_spacy_scores_it(trained):
    """The run's dev score is the span F1 of the pipeline spaCy chose, equal to spaCy's own ents_f on the same docs."""
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example

    spec, directory, _, dev = trained
    assert pipeline_is_whole(directory)
    with open(os.path.join(directory, "metrics.json")) as handle:
        metrics = json.load(handle)
    ours = score_pipeline(pipeline_of(directory), spec.dev)["f1-measure-overall"]
    assert metrics["best_validation_f1-measure-overall"] == ours
    assert score_pipeline(pipeline_of(directory), dev)["f1-measure-overall"] == ours  # a path or a {lang: path} map
    nlp = spacy.load(pipeline_of(directory))
    gold = gold_docs(nlp.vocab, SENTENCES)
    examples = [Example(nlp(Doc(nlp.vocab, words=[t.text for t in doc])), doc) for doc in gold]
    theirs = nlp.get_pipe("ner").score(examples)["ents_f"]
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert isinstance(metrics["best_epoch"], int) and metrics["training_duration"].count(":") == 2


def test_a_finished_run_is_kept_and_an_interrupted_one_set_aside(trained):
    spec, directory, env, _ = trained
    stamp = os.stat(os.path.join(directory, "metrics.json")).st_mtime_ns
    train_run(spec, directory, env)  # finished: nothing is trained again
    assert os.stat(os.path.join(directory, "metrics.json")).st_mtime_ns == stamp


def test_parameters_count_every_weight_once(trained):
    import spacy

    _, directory, _, _ = trained
    nlp = spacy.load(pipeline_of(directory))
    by_hand = {}
    for _, component in nlp.pipeline:
        for node in component.model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    by_hand[(node.id, name)] = node.get_param(name).size
    assert parameters_of(pipeline_of(directory)) == sum(by_hand.values()) > 0


def test_the_best_epoch_is_read_from_spacys_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("E    #       LOSS TOK2VEC  LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE \n"
                   "---  ------  ------------  --------  ------  ------  ------  ------\n"
                   "  0       0          0.00     47.50    0.00    0.00    0.00    0.00\n"
                   "  3     200        120.31   2250.71   41.10   50.00   34.90    0.41\n"
                   "  7     400         90.00   1000.00   38.00   40.00   36.00    0.38\n")
    assert best_epoch(str(log)) == 3
    empty = tmp_path / "empty.log"
    empty.write_text("no rows\n")
    assert best_epoch(str(empty)) is None


def test_a_spacy_row_is_no_teacher():
    spec = SpacyTrain(train="{}", dev="{}")
    with pytest.raises(ValueError, match="spaCy pipeline"):
        Suite(description="", runs=[Run("spacy", "", teacher=True, spacy=spec)], env={}, metric="m", metric_name="m")
