import json
import subprocess
import sys

import pytest
import spacy


@pytest.fixture(scope="module")
def nlp(teacher_archive):
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": teacher_archive})
    return nlp


def test_factory_found_in_a_fresh_interpreter_through_the_entry_point(teacher_archive):
    """No import of ours before add_pipe: spaCy finds the factory through setup.py's entry point."""
    code = (
        "import spacy, json\n"
        "nlp = spacy.blank('xx')\n"
        f"nlp.add_pipe('structkd_tagger', config={{'model': {teacher_archive!r}, 'lang': 'es'}})\n"
        "doc = nlp('Juan visitó Madrid .')\n"
        "print(json.dumps([t._.structkd_label for t in doc]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads(result.stdout.strip().splitlines()[-1])) == 4


def test_entities_probabilities_and_scores(nlp):
    doc = nlp("Luiz Inacio Lula visitó Madrid y Brasil .")
    for token in doc:
        probs = token._.structkd_probs
        assert abs(sum(probs.values()) - 1) < 1e-4 and token._.structkd_label in probs
    for ent in doc.ents:
        assert ent.label_ in {"PER", "LOC", "ORG", "MISC"} and 0 < ent._.structkd_score <= 1


def test_pipe_batches_give_the_same_output_as_one_by_one(nlp):
    texts = ["Jan woont in Gent .", "De Rode Duivels wonnen .", "El presidente de Brasil ."] * 4
    one_by_one = [[t._.structkd_label for t in nlp(text)] for text in texts]
    batched = [[t._.structkd_label for t in doc] for doc in nlp.pipe(texts, batch_size=5)]
    assert batched == one_by_one


def test_to_disk_and_load_give_identical_output(nlp, tmp_path):
    text = "Juan García visitó Sevilla ."
    before = nlp(text)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    after = loaded(text)
    assert [(e.start, e.end, e.label_) for e in before.ents] == [(e.start, e.end, e.label_) for e in after.ents]
    assert [t._.structkd_probs for t in before] == [t._.structkd_probs for t in after]


@pytest.mark.parametrize("text", ["", "   \n\t ", "🙂🙂 Ωμέγα 東京 مرحبا Juan", "qqqzzz xxyyww " * 10])
def test_odd_input_gives_sensible_output(nlp, text):
    doc = nlp(text)
    for token in doc:
        if not token.is_space:
            assert token._.structkd_label is not None


def test_a_long_document_is_processed_in_chunks(nlp):
    doc = nlp("Juan visitó Madrid . " * 5000)  # 100,000 characters
    assert len(doc) == 20000 and all(t._.structkd_label is not None for t in doc)


def test_confidences_are_one_array_per_doc_and_match_the_predictor(nlp, teacher_archive):
    """The component's direct path gives the predictor's tags and exact marginals; whitespace gets none."""
    from allennlp.models.archival import load_archive
    from allennlp.predictors import Predictor

    doc = nlp("Juan  visitó\n Madrid .")
    labels, probs = doc._.structkd_labels, doc._.structkd_probs
    assert probs.shape == (len(doc), len(labels))
    words = [t for t in doc if not t.is_space]
    expected = Predictor.from_archive(load_archive(teacher_archive), "structkd_tagger").predict_json(
        {"tokens": [t.text for t in words], "lang": "es"})
    assert expected["labels"] == labels
    assert [t._.structkd_label for t in words] == expected["tags"]
    for token, row in zip(words, expected["probs"]):
        assert list(token._.structkd_probs) == labels
        assert list(token._.structkd_probs.values()) == pytest.approx(row, abs=1e-6)
    for token in doc:
        if token.is_space:
            assert token._.structkd_probs is None and token._.structkd_label is None


def test_docs_survive_docbin_serialization(nlp):
    from spacy.tokens import DocBin

    doc = nlp("Juan visitó Madrid .")
    restored = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert [t._.structkd_probs for t in restored] == [t._.structkd_probs for t in doc]


def test_what_cannot_be_served_is_refused_at_add_pipe_saying_what_can(span_teacher_archive, parser_archive, tmp_path):
    for archive in (span_teacher_archive, parser_archive):
        with pytest.raises(Exception, match=r"cannot be exported; what can: structkd_crf_tagger"):
            spacy.blank("es").add_pipe("structkd_tagger", config={"model": archive})
    with pytest.raises(ValueError, match=r"no exported student at .*nowhere"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": str(tmp_path / "nowhere")})
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "student.json").write_text("{}")
    with pytest.raises(ValueError, match=r"half is not an exported student: it lacks vocabulary.json, weights.pt"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": str(tmp_path / "half")})


@pytest.mark.parametrize("setting, value", [("max_tokens", -1), ("max_tokens", 0), ("max_tokens", "10"),
                                            ("batch_size", 0), ("threads", -1)])
def test_factory_rejects_invalid_settings(teacher_archive, setting, value):
    nlp = spacy.blank("es")
    with pytest.raises(ValueError, match=f"{setting} must be"):
        nlp.add_pipe("structkd_tagger", config={"model": teacher_archive, setting: value})


def test_chunks_are_whole_sentences_when_sentences_are_known(teacher_archive):
    nlp = spacy.blank("es")
    nlp.add_pipe("sentencizer")
    tagger = nlp.add_pipe("structkd_tagger", config={"model": teacher_archive})
    text = "Juan vive en Madrid . Ana visitó Buenos Aires ayer . Pedro trabaja en la ONU ."
    doc = nlp.make_doc(text)
    doc = nlp.get_pipe("sentencizer")(doc)
    sentences = [[t.i for t in s] for s in doc.sents]
    chunks = list(tagger._sentences(doc))
    assert chunks == [sentences[0], sentences[1], sentences[2]]  # one sentence each, never packed into one input
    for chunk in chunks:
        assert any(chunk == s for s in sentences)
    # each sentence is tagged exactly as on its own
    processed = nlp(text)
    for sentence in processed.sents:
        alone = nlp(sentence.text)
        assert [t._.structkd_label for t in sentence] == [t._.structkd_label for t in alone]


def test_long_sentences_are_cut_at_punctuation_and_warned_about(teacher_archive, caplog):
    nlp = spacy.blank("es")
    tagger = nlp.add_pipe("structkd_tagger", config={"model": teacher_archive, "max_tokens": 6})
    doc = nlp.make_doc("Juan vive en Madrid . Ana visitó Buenos Aires con Pedro Gómez")  # no sentence boundaries
    chunks = list(tagger._sentences(doc))
    assert chunks[0] == [0, 1, 2, 3, 4]  # cut after "." rather than inside "Buenos Aires"
    assert sum(map(len, chunks)) == len(doc) and all(len(c) <= 6 for c in chunks)
    assert any("cut at 6 tokens" in r.getMessage() for r in caplog.records)  # the rest has no punctuation


def test_one_entity_reading_for_predictor_and_component():
    """BIOUL's U-/L- (and lenient I- without B-) read the same way everywhere: one function, the serving package's,
    which the library's metric, predictor and demo import, and which reads tags as seqeval (conlleval's rules) does."""
    import random

    from seqeval.metrics.sequence_labeling import get_entities

    from allennlp_structkd import demo
    from allennlp_structkd.dataset_readers import tag_schemes
    from allennlp_structkd.predictors import structkd_tagger
    from allennlp_structkd.training.metrics import span_f1
    from structkd_spacy import component, spans

    assert tag_schemes.entities is spans.entities and component.entities is spans.entities
    assert structkd_tagger.entities is spans.entities and span_f1.entities is spans.entities and demo.entities is spans.entities
    tags = ["U-PER", "O", "B-LOC", "L-LOC", "I-ORG", "S-MISC", "B-PER", "E-PER"]
    assert spans.entities(tags) == [("PER", 0, 0), ("LOC", 2, 3), ("ORG", 4, 4), ("MISC", 5, 5), ("PER", 6, 7)]

    def seqeval_reading(tags):  # seqeval knows BIOES, not BIOUL: U-/L- renamed first
        return get_entities([{"U-": "S-", "L-": "E-"}.get(t[:2], t[:2]) + t[2:] if len(t) > 2 else t for t in tags])

    rng = random.Random(0)
    for _ in range(3000):
        tags = [rng.choice(["O"] + [f"{p}-{t}" for p in "BIESUL" for t in "AB"]) for _ in range(rng.randint(0, 7))]
        assert spans.entities(tags) == seqeval_reading(tags), tags
    assert spans.is_span_label_set(["O", "U-PER", "L-PER"]) and not spans.is_span_label_set(["NOUN", "VERB"])


@pytest.mark.parametrize("inputs, message", [
    ({"sentence": 42}, "'sentence' must be a string"),
    ({"sentence": ["Juan", "vive"]}, "'sentence' must be a string"),
    ({"tokens": "Juan vive"}, "'tokens' must be a list of strings"),
    ({"sentence": "Juan vive", "lang": 3}, "'lang' must be"),
    ({"text": "Juan vive"}, "needs 'sentence' or 'tokens'"),
])
def test_predictor_inputs_of_the_wrong_type_name_the_field(teacher_archive, inputs, message):
    from allennlp.common.checks import ConfigurationError
    from allennlp.predictors import Predictor

    predictor = Predictor.from_path(teacher_archive, "structkd_tagger")
    with pytest.raises(ConfigurationError, match=message):
        predictor.predict_json(inputs)


def test_extensions_are_installed_on_demand_and_assigns_declared(teacher_archive):
    code = (
        "import json, spacy\n"
        "from spacy.tokens import Doc\n"
        "import structkd_spacy, structkd_spacy.component\n"
        "before = Doc.has_extension('structkd_probs')\n"
        "nlp = spacy.blank('es')\n"
        f"nlp.add_pipe('structkd_tagger', config={{'model': {teacher_archive!r}}})\n"
        "print(json.dumps([before, Doc.has_extension('structkd_probs'), nlp.get_pipe_meta('structkd_tagger').assigns]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after, assigns = json.loads(result.stdout.strip().splitlines()[-1])
    assert before is False and after is True
    assert {"doc.ents", "token.tag", "token.head", "token.dep", "doc._.structkd_probs"} <= set(assigns)


def test_a_sentence_is_tagged_as_alone_whatever_its_neighbours(teacher_archive):
    """With or without sentence boundaries, a sentence's labels and confidences are those it gets alone."""
    sentences = ["Juan vive en Madrid .", "Ana visitó Buenos Aires ayer con Pedro .", "La ONU y la OTAN !", "Gent ligt in België ."]
    for with_sentencizer in (True, False):
        nlp = spacy.blank("es")
        if with_sentencizer:
            nlp.add_pipe("sentencizer")
        nlp.add_pipe("structkd_tagger", config={"model": teacher_archive})
        doc = nlp(" ".join(sentences * 10))
        alone = [nlp(text) for text in sentences]
        for k in range(40):
            part = doc[sum(len(a) for a in alone) * (k // 4) + sum(len(a) for a in alone[: k % 4]):][: len(alone[k % 4])]
            assert [t._.structkd_label for t in part] == [t._.structkd_label for t in alone[k % 4]]
            import numpy

            numpy.testing.assert_allclose(doc._.structkd_probs[part.start:part.end], alone[k % 4]._.structkd_probs, atol=1e-5)


def test_a_parser_keeps_the_documents_sentences(seq_label_parser_archive):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("structkd_tagger", config={"model": seq_label_parser_archive})
    doc = nlp.make_doc("The dog barks . A cat sleeps here . Birds sing .")
    for token in doc:
        token.pos_ = "PUNCT" if token.text == "." else "NOUN"
    for _, component in nlp.pipeline:
        doc = component(doc)
    assert [s.text for s in doc.sents] == ["The dog barks .", "A cat sleeps here .", "Birds sing ."]
    for sentence in doc.sents:
        assert sum(t.head == t for t in sentence) >= 1 and all(t.head in sentence for t in sentence)


@pytest.mark.parametrize("overwrite", [False, True])
def test_entities_set_earlier_are_kept_unless_told_to_overwrite(teacher_archive, overwrite):
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PRODUCT", "pattern": "Madrid"}])
    nlp.add_pipe("structkd_tagger", config={"model": teacher_archive, "overwrite_ents": overwrite})
    doc = nlp("Juan García visitó Madrid .")
    labels = {(e.text, e.label_) for e in doc.ents}
    assert (("Madrid", "PRODUCT") in labels) != overwrite
    assert all(e.label_ != "PRODUCT" for e in doc.ents) == overwrite


def test_a_parser_without_pos_tags_is_a_clear_error_and_with_them_gives_trees(seq_label_parser_archive):
    from spacy import displacy

    nlp = spacy.blank("en")
    nlp.add_pipe("structkd_tagger", config={"model": seq_label_parser_archive})
    with pytest.raises(ValueError, match=r"reads each word's PoS tag \(token.pos_\), and 3 words have none"):
        nlp("dog chases cat")
    import random

    rng = random.Random(0)
    for _ in range(20):
        words = [rng.choice(["dog", "cat", "the", "saw", "runs", "a", "big", "."]) for _ in range(rng.randint(1, 9))]
        doc = nlp.make_doc(" ".join(words))
        for token in doc:
            token.pos_ = rng.choice(["NOUN", "VERB", "DET", "ADJ", "PUNCT"])
        doc = nlp.get_pipe("structkd_tagger")(doc)
        roots = [t for t in doc if t.head == t]
        assert len(roots) >= 1 and all(t.dep_ for t in doc)
        for token in doc:  # every word reaches a root: no cycle
            seen, node = set(), token
            while node.head != node:
                assert node.i not in seen
                seen.add(node.i)
                node = node.head
        displacy.render(doc, style="dep")  # crashed on cyclic heads ([E039])


def test_the_component_runs_on_its_own_thread_count_and_restores_the_process(teacher_archive):
    """With the PyTorch network (no network.onnx in an archive exported on the fly)."""
    import torch

    seen = []
    nlp = spacy.blank("es")
    tagger = nlp.add_pipe("structkd_tagger", config={"model": teacher_archive, "threads": 1})
    original = tagger.network.model.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    tagger.network.model.forward = spy
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        nlp("Juan visitó Madrid .")
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be"):
        spacy.blank("es").add_pipe("structkd_tagger", config={"model": teacher_archive, "threads": -1})
