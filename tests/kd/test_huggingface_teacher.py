"""A fine-tuned Hugging Face token classifier as a teacher, on a tiny classifier built in code: its word
distributions are the model's own softmax, long sentences are windowed, its labels map into the student's
scheme, its Case 3 targets equal enumeration over the sequences the scheme allows, and a KD config that names
its folder trains a CRF student."""
import itertools
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher, LabelMapping, best_window, windows
from allennlp_structkd.kd.losses import KDLoss
from allennlp_structkd.kd.targets import expand_entries
from tests.conftest import FIXTURES, SAMPLE_DATA

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
TINY_BERT = SAMPLE_DATA / "tiny_bert"


def build_classifier(folder, labels=IOB2, seed=0, max_positions=128):
    """A random BERT token classifier over the sample data's tiny vocabulary, saved as save_pretrained writes it."""
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    torch.manual_seed(seed)
    config = BertConfig.from_pretrained(str(TINY_BERT), num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id={label: i for i, label in enumerate(labels)},
                                        max_position_embeddings=max_positions)
    model = BertForTokenClassification(config)
    with torch.no_grad():  # sharper than the initialisation, so that the distributions differ visibly
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(str(folder))
    BertTokenizerFast(vocab_file=str(TINY_BERT / "vocab.txt")).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return build_classifier(tmp_path_factory.mktemp("hf") / "ner-classifier")


def objective(spec):
    from allennlp.common import Params

    return KDLoss.from_params(Params(spec))


def teacher(folder, tmp_path, scheme="BIOES", **kwargs):
    return HuggingFaceTeacher(folder, -1, str(tmp_path / "cache"), scheme, **kwargs)


SENTENCE = ["El", "presidente", "de", "Brasil", "visitó", "Madrid", "."]


def test_word_distributions_are_the_models_softmax_at_each_words_first_piece(classifier, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    hf = teacher(classifier, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    model = AutoModelForTokenClassification.from_pretrained(classifier).eval()
    encoded = tokenizer(SENTENCE, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**encoded).logits.softmax(-1)[0]
    firsts = [encoded.word_ids().index(i) for i in range(len(SENTENCE))]
    ours = hf.word_log_probs([SENTENCE, SENTENCE[:3]])
    assert torch.allclose(ours[0].exp(), probs[firsts], atol=1e-6)
    assert ours[1].shape == (3, len(IOB2))


def test_a_sentence_that_fits_is_one_pass_and_a_longer_one_is_windowed_never_cut(classifier, tmp_path):
    long_sentence = SENTENCE * 40  # far more pieces than the 128 positions
    hf = teacher(classifier, tmp_path)
    assert len(hf._pieces(long_sentence)) == len(long_sentence)
    [rows] = hf.word_log_probs([long_sentence])
    assert rows.shape == (len(long_sentence), len(IOB2)) and torch.isfinite(rows).all()
    # windows of 12 pieces over a sentence that fits in one: the same as one pass
    short = teacher(classifier, tmp_path, max_length=64)
    windowed = teacher(classifier, tmp_path, max_length=12)
    [one] = short.word_log_probs([SENTENCE])
    [many] = windowed.word_log_probs([SENTENCE * 3])
    assert len(windows([len(p) for p in windowed._pieces(SENTENCE * 3)], windowed.budget)) > 1
    assert many.shape[0] == 3 * len(SENTENCE)
    assert torch.allclose(teacher(classifier, tmp_path, max_length=128).word_log_probs([SENTENCE])[0], one, atol=1e-6)


def test_windows_cover_every_word_and_each_word_is_read_where_it_is_most_central():
    counts = [1, 3, 2, 2, 1, 4, 1, 1]
    spans = windows(counts, 5)
    assert spans[0][0] == 0 and spans[-1][1] == len(counts)
    assert all(sum(counts[s:e]) <= 5 for s, e in spans)
    assert all(any(s <= i < e for s, e in spans) for i in range(len(counts)))
    assert all(a[0] < b[0] < a[1] or b[0] == a[1] for a, b in zip(spans, spans[1:]))  # they overlap or touch
    assert windows([2, 2, 2], 100) == [(0, 3)]
    assert windows([7], 5) == [(0, 1)]  # a word of more pieces than a window is cut to its first ones
    assert best_window(2, [(0, 4), (2, 6)]) == 0 and best_window(3, [(0, 4), (2, 6)]) == 1


def test_iob2_labels_map_into_bioes_and_bio():
    bioes = LabelMapping(IOB2, "BIOES", "folder")
    assert bioes.labels[:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"] and len(bioes.labels) == 17
    reads = {label: IOB2[s[0]] for label, s in zip(bioes.labels, bioes.sources)}
    assert reads["E-PER"] == "I-PER" and reads["S-PER"] == "B-PER" and reads["B-PER"] == "B-PER"
    assert not bioes.one_to_one
    bio = LabelMapping(IOB2, "BIO", "folder")
    assert sorted(bio.labels) == sorted(IOB2) and bio.one_to_one
    same = LabelMapping(["O", "B-PER", "I-PER", "E-PER", "S-PER"], "BIOES", "folder")
    assert same.one_to_one and same.labels == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    bioul = LabelMapping(["O", "B-PER", "I-PER", "L-PER", "U-PER"], "BIOES", "folder")
    assert bioul.labels == ["O", "B-PER", "I-PER", "E-PER", "S-PER"] and bioul.one_to_one


@pytest.mark.parametrize("labels, scheme, message", [
    (IOB2, None, "labels spans .* but the student reads plain tags"),
    (["NOUN", "VERB"], "BIOES", "not those of a span scheme"),
    (["O", "B-PER", "E-PER", "S-PER", "I-PER"], "BIO", "tags in BIOES/BIOUL .* and the student in BIO"),
    (["O", "B-PER", "B-PER"], "BIOES", "names a label twice"),
])
def test_label_sets_that_do_not_fit_name_both_sides(labels, scheme, message):
    with pytest.raises(ConfigurationError, match=message):
        LabelMapping(labels, scheme, "folder")


def _enumerated_marginals(log_probs, mapping):
    """Unary and pair marginals by enumeration over every student label sequence the scheme allows, each weighted by
    the product of the teacher's probabilities of the labels its labels read."""
    allowed = mapping.allowed()
    n, size = log_probs.shape[0], len(mapping.labels)
    unary, pair, total = torch.zeros(n, size), torch.zeros(n, size, size), 0.0
    best, best_weight = None, -1.0
    emissions = mapping.student_log_probs(log_probs)
    for sequence in itertools.product(range(size), repeat=n):
        if not allowed.start[sequence[0]] or not allowed.end[sequence[-1]]:
            continue
        if not all(allowed.transitions[a, b] for a, b in zip(sequence, sequence[1:])):
            continue
        weight = float(sum(emissions[i, t] for i, t in enumerate(sequence)).exp())
        total += weight
        if weight > best_weight:
            best, best_weight = list(sequence), weight
        for i, t in enumerate(sequence):
            unary[i, t] += weight
        for i in range(1, n):
            pair[i, sequence[i - 1], sequence[i]] += weight
    return unary / total, pair / total, best


def test_case3_targets_equal_enumeration_and_put_no_mass_on_forbidden_transitions(tmp_path):
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    folder = build_classifier(tmp_path / "two-types", labels, seed=3)
    hf = teacher(folder, tmp_path)
    words = ["Juan", "visitó", "Madrid"]
    loss = objective({"type": "structural"})
    [targets] = expand_entries(loss, hf.annotate([{"words": words, "sentence_id": "x"}], loss))
    [log_probs] = hf.word_log_probs([words])
    unary, pair, best = _enumerated_marginals(log_probs, hf.mapping)
    assert torch.allclose(torch.from_numpy(targets["teacher_unary"]), unary, atol=1e-5)
    assert torch.allclose(torch.from_numpy(targets["teacher_pairwise"])[1:], pair[1:], atol=1e-5)
    forbidden = ~hf.mapping.allowed().transitions
    assert float(torch.from_numpy(targets["teacher_pairwise"])[1:][:, forbidden].abs().max()) == 0.0
    assert targets["pseudo_tags"].tolist() == best  # Top-1: the most probable sequence the scheme allows


@pytest.mark.parametrize("spec", [{"type": "posterior"}, {"type": "top1"}, {"type": "structural"}])
def test_it_teaches_what_a_maxent_teacher_teaches(classifier, tmp_path, spec):
    hf = teacher(classifier, tmp_path)
    loss = objective(spec)
    hf.check_teaches(loss)
    [targets] = expand_entries(loss, hf.annotate([{"words": SENTENCE, "sentence_id": "x"}], loss))
    assert all(v.shape[0] == len(SENTENCE) for k, v in targets.items() if k.startswith(("teacher_unary", "pseudo")))


def test_token_kd_needs_labels_that_are_the_students_one_to_one(classifier, tmp_path):
    with pytest.raises(ConfigurationError, match=r"Hugging Face token classifier .* asks for potentials"):
        teacher(classifier, tmp_path).check_teaches(objective({"type": "token"}))
    bio = teacher(classifier, tmp_path, scheme="BIO")  # IOB2 teacher, BIO student: one to one
    bio.check_teaches(objective({"type": "token"}))
    [targets] = bio.annotate([{"words": SENTENCE, "sentence_id": "x"}], objective({"type": "token"}))
    [log_probs] = bio.word_log_probs([SENTENCE])
    expected = log_probs.exp()[:, [IOB2.index(label) for label in bio.labels]]  # the teacher's own, in student order
    assert torch.allclose(torch.from_numpy(targets["teacher_probs"]), expected, atol=1e-6)


def test_plain_tags_are_a_per_token_softmax(tmp_path):
    tags = ["NOUN", "VERB", "DET", "PUNCT"]
    folder = build_classifier(tmp_path / "upos", tags)
    hf = teacher(folder, tmp_path, scheme=None)
    loss = objective({"type": "structural"})
    [targets] = expand_entries(loss, hf.annotate([{"words": SENTENCE, "sentence_id": "x"}], loss))
    [log_probs] = hf.word_log_probs([SENTENCE])
    assert hf.labels == tags and torch.allclose(torch.from_numpy(targets["teacher_unary"]), log_probs.exp(), atol=1e-6)
    hf.check_teaches(objective({"type": "token"}))


def test_label_mapping_renames_the_teachers_labels(tmp_path):
    folder = build_classifier(tmp_path / "person", ["O", "B-PERSON", "I-PERSON"])
    hf = teacher(folder, tmp_path, label_mapping={"B-PERSON": "B-PER", "I-PERSON": "I-PER"})
    assert hf.labels == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    with pytest.raises(ConfigurationError, match=r"label_mapping renames \['B-PERS'\], which are not labels"):
        teacher(folder, tmp_path, label_mapping={"B-PERS": "B-PER"})


def test_folders_that_are_no_token_classifier_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match="tiny_bert is not a token classifier: .*architectures \\['BertModel'\\]"):
        teacher(str(TINY_BERT), tmp_path)
    folder = build_classifier(tmp_path / "no-tokenizer")
    for name in os.listdir(folder):
        if "tok" in name or name == "vocab.txt" or name == "special_tokens_map.json":
            os.remove(os.path.join(folder, name))
    with pytest.raises(ConfigurationError, match="no-tokenizer has no tokenizer transformers can load"):
        teacher(folder, tmp_path)
    slow = build_classifier(tmp_path / "slow")
    import transformers

    original = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda *a, **k: transformers.BertTokenizer(vocab_file=str(TINY_BERT / "vocab.txt")))
    with pytest.raises(ConfigurationError, match="slow .* cannot say which word a piece belongs to"):
        teacher(slow, tmp_path)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", original)


def test_a_changed_folder_is_a_new_cache_never_stale_targets(tmp_path):
    folder = build_classifier(tmp_path / "changing")
    first = teacher(folder, tmp_path)
    build_classifier(tmp_path / "changing", seed=1)  # the same folder, other weights
    second = teacher(folder, tmp_path)
    assert first.cache.path != second.cache.path
    assert teacher(folder, tmp_path, scheme="BIO").cache.path != second.cache.path  # other targets: another cache


def test_a_kd_config_naming_the_folder_trains_a_crf_student_with_case3(classifier, tmp_path):
    """The fixture KD config, its teacher a plain path to the classifier's folder (recognised by config.json)."""
    env = dict(os.environ, STRUCTKD_TEST_DATA=str(FIXTURES / "data"), STRUCTKD_TEST_TEACHER=classifier,
               STRUCTKD_TEST_OBJECTIVE=json.dumps({"type": "structural"}), STRUCTKD_TEST_DECODER="structkd_crf_tagger",
               STRUCTKD_TEST_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "allennlp", "train", str(FIXTURES / "configs" / "kd_student.jsonnet"),
                             "-s", str(tmp_path / "run"), "--include-package", "allennlp_structkd"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "best_validation_f1-measure-overall" in metrics
    assert os.listdir(tmp_path / "cache")  # the teacher's outputs were cached
    shutil.rmtree(tmp_path / "run")


def test_the_spec_form_selects_it_in_a_config(classifier, tmp_path):
    from allennlp.common import Params
    from allennlp.data import DatasetReader

    reader = DatasetReader.from_params(Params({
        "type": "structkd_teacher", "base_reader": {"type": "structkd_conll_ner"}, "objective": {"type": "posterior"},
        "teachers": {"es": {"type": "huggingface", "model": classifier, "label_mapping": {}}},
        "cache_directory": str(tmp_path / "cache")}))
    loaded = reader.teacher("es")
    assert isinstance(loaded, HuggingFaceTeacher) and loaded.mapping.scheme == "BIOES"
    instances = list(reader.read(json.dumps({"es": str(FIXTURES / "data" / "ner_es.conll")})))
    assert instances and all("teacher_targets" in i.fields for i in instances)
