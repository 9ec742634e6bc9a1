import json
import logging

import pytest
from allennlp.common import Params
from allennlp.data import DatasetReader

import allennlp_structkd  # noqa: F401  (registers the readers)
from allennlp_structkd.dataset_readers import InputError, sentence_id
from tests.conftest import write


def read(params: dict, path: str):
    reader = DatasetReader.from_params(Params(params))
    return list(reader.read(path))


# --- CoNLL NER ------------------------------------------------------------------------------

def test_conll_ner_reads_and_converts_to_bioes(fixtures):
    instances = read({"type": "structkd_conll_ner", "lang": "es"}, str(fixtures / "data" / "ner_es.conll"))
    assert len(instances) == 2
    first = instances[0]
    assert first["metadata"]["words"][:4] == ["El", "presidente", "de", "Brasil"]
    assert first["tags"].labels == ["O", "O", "O", "S-LOC", "O", "B-PER", "I-PER", "E-PER", "O", "O", "S-LOC", "O"]
    assert first["metadata"]["lang"] == "es"
    assert first["metadata"]["line"] == 3
    assert first["metadata"]["sentence_id"] == sentence_id("es", first["metadata"]["words"])
    assert first["metadata"]["gold_spans"] == [(3, 3, "LOC"), (5, 7, "PER"), (10, 10, "LOC")]


def test_conll_ner_bio_output_and_pos_column(fixtures):
    instances = read(
        {"type": "structkd_conll_ner", "output_scheme": "BIO", "pos_column": 1, "lang": "nl"},
        str(fixtures / "data" / "ner_nl.conll"),
    )
    assert [i["tags"].labels for i in instances] == [
        ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
        ["O", "B-ORG", "I-ORG", "O", "O"],
    ]
    assert instances[0]["pos_tags"].labels[:2] == ["N", "N"]


def test_multilingual_json_path(fixtures):
    paths = {"es": str(fixtures / "data" / "ner_es.conll"), "nl": str(fixtures / "data" / "ner_nl.conll")}
    instances = read({"type": "structkd_conll_ner"}, json.dumps(paths))
    assert [i["metadata"]["lang"] for i in instances] == ["es", "es", "nl", "nl"]
    ids = {i["metadata"]["sentence_id"] for i in instances}
    assert len(ids) == 4
    # the id depends on the language too
    assert sentence_id("es", ["a"]) != sentence_id("nl", ["a"])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="not found"):
        read({"type": "structkd_conll_ner"}, json.dumps({"es": str(tmp_path / "nope.conll")}))


@pytest.mark.parametrize(
    "text, scheme, line, fragment",
    [
        ("a O\nb B-PER\n\nc O\nd I-LOC\n", "IOB2", 5, "invalid IOB2"),
        ("a NN O\nb NN B-PER\n\nc O\n", "IOB2", 4, "expected 3 columns"),
        ("a O\nb B-PER\nc O\n", "BIOES", 3, "unfinished span"),
        ("a O\nb XYZ\n", "IOB2", 2, "'XYZ'"),
    ],
)
def test_conll_ner_bad_input_names_file_and_line(tmp_path, text, scheme, line, fragment):
    path = write(tmp_path, "bad.conll", text)
    with pytest.raises(InputError) as error:
        read({"type": "structkd_conll_ner", "tag_scheme": scheme, "invalid_tags": "error"}, path)
    assert error.value.path == path and error.value.line == line
    assert fragment in str(error.value) and path in str(error.value)


def test_unknown_tag_scheme_in_config():
    with pytest.raises(Exception, match="unknown tag scheme"):
        DatasetReader.from_params(Params({"type": "structkd_conll_ner", "tag_scheme": "XYZ"}))


def test_strict_false_skips_with_a_count(tmp_path, caplog):
    path = write(tmp_path, "bad.conll", "a O\nb B-PER\n\nc O\nd I-LOC\n\ne B-LOC\n")
    with caplog.at_level(logging.WARNING):
        instances = read({"type": "structkd_conll_ner", "strict": False, "invalid_tags": "error"}, path)
    assert [i["metadata"]["words"] for i in instances] == [["a", "b"], ["e"]]
    assert "skipped 1 bad sentence" in caplog.text


# --- CoNLL-U ----------------------------------------------------------------------------------

def test_conllu_skips_ranges_and_empty_nodes(fixtures):
    instances = read({"type": "structkd_conllu", "use_xpos": True, "lang": "en"}, str(fixtures / "data" / "ud_en.conllu"))
    assert len(instances) == 2
    second = instances[1]
    assert second["metadata"]["words"] == ["I", "do", "n't", "know", "."]
    assert second["upos"].labels == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert second["xpos"].labels == ["PRP", "VBP", "RB", "VB", "."]
    assert second["head_indices"].labels == [4, 4, 4, 0, 4]
    assert second["head_tags"].labels == ["nsubj", "aux", "advmod", "root", "punct"]
    assert second["metadata"]["line"] == 7


def test_conllu_round_trip(fixtures, tmp_path):
    """Reading, writing back the columns we use, and reading again gives the same instances."""
    instances = read({"type": "structkd_conllu"}, str(fixtures / "data" / "ud_en.conllu"))
    lines = []
    for inst in instances:
        for k, (w, p, h, d) in enumerate(zip(inst["metadata"]["words"], inst["upos"].labels, inst["head_indices"].labels, inst["head_tags"].labels)):
            lines.append("\t".join([str(k + 1), w, "_", p, "_", "_", str(h), d, "_", "_"]))
        lines.append("")
    path = write(tmp_path, "rt.conllu", "\n".join(lines) + "\n")
    again = read({"type": "structkd_conllu"}, path)
    for a, b in zip(instances, again):
        assert a["metadata"]["words"] == b["metadata"]["words"]
        assert a["upos"].labels == b["upos"].labels
        assert a["head_indices"].labels == b["head_indices"].labels
        assert a["head_tags"].labels == b["head_tags"].labels
        assert a["metadata"]["sentence_id"] == b["metadata"]["sentence_id"]


ROW = "{i}\t{w}\t_\tNOUN\t_\t_\t{h}\tdep\t_\t_"


@pytest.mark.parametrize(
    "rows, line, fragment",
    [
        ([ROW.format(i=1, w="a", h=0), ROW.format(i=2, w="b", h="x")], 2, "not a valid value"),
        ([ROW.format(i=1, w="a", h=0), ROW.format(i=2, w="b", h=7)], 2, "out of range"),
        ([ROW.format(i=1, w="a", h=2), ROW.format(i=2, w="b", h=1)], 1, "cycle"),
        ([ROW.format(i=1, w="a", h=0), "2\tb\t_\tNOUN"], 2, "expected 10"),
        ([ROW.format(i=1, w="a", h=1)], 1, "own head"),
    ],
)
def test_conllu_bad_input(tmp_path, rows, line, fragment):
    path = write(tmp_path, "bad.conllu", "# sent_id = x\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as error:
        read({"type": "structkd_conllu"}, path)
    assert error.value.line == line + 1  # the comment line comes first
    assert fragment in str(error.value)


def test_conllu_one_word_sentence(tmp_path):
    path = write(tmp_path, "one.conllu", ROW.format(i=1, w="Hi", h=0) + "\n")
    (instance,) = read({"type": "structkd_conllu"}, path)
    assert instance["head_indices"].labels == [0]


# --- PTB .dp ----------------------------------------------------------------------------------

def test_ptb_dependency(fixtures):
    instances = read({"type": "structkd_ptb_dependency"}, str(fixtures / "data" / "ptb.dp"))
    assert [i["metadata"]["words"] for i in instances] == [["The", "cat", "sat", "."], ["Dogs", "bark"]]
    assert instances[0]["head_indices"].labels == [2, 3, 0, 3]
    assert instances[0]["xpos"].labels == ["DT", "NN", "VBD", "."]
    assert instances[1]["metadata"]["line"] == 6


@pytest.mark.parametrize(
    "text, line, fragment",
    [("a\tNN\t0\nb\tNN\tone\n", 2, "not a number"), ("a\tNN\t3\n", 1, "out of range"), ("a\tNN\n", 1, "expected 3")],
)
def test_ptb_bad_input(tmp_path, text, line, fragment):
    path = write(tmp_path, "bad.dp", text)
    with pytest.raises(InputError) as error:
        read({"type": "structkd_ptb_dependency"}, path)
    assert error.value.line == line and fragment in str(error.value)


# --- unlabeled ----------------------------------------------------------------------------------

def test_unlabeled_text(fixtures):
    instances = read({"type": "structkd_unlabeled_text", "lang": "es"}, str(fixtures / "data" / "unlabeled.txt"))
    assert [i["metadata"]["words"] for i in instances] == [
        ["el", "gato", "duerme"],
        ["la", "casa", "de", "Madrid", "es", "grande", "."],
    ]
    assert instances[1]["metadata"]["line"] == 3
    assert instances[0]["metadata"]["unlabeled"] is True
    assert set(instances[0].fields) == {"tokens", "metadata"}


def test_max_instances_over_all_languages(fixtures):
    paths = {"es": str(fixtures / "data" / "ner_es.conll"), "nl": str(fixtures / "data" / "ner_nl.conll")}
    reader = DatasetReader.from_params(Params({"type": "structkd_conll_ner", "max_instances": 3}))
    assert len(list(reader.read(json.dumps(paths)))) == 3


def test_stray_tags_are_repaired_as_conlleval_reads_them_by_default(tmp_path, caplog):
    """CoNLL-2002's esp.train and esp.testa each have a sentence that starts with I-LOC: read, not fatal."""
    path = write(tmp_path, "es.conll", "Juan B-PER\nvisitó O\n\nMadrid I-LOC\nhoy O\n\nAna I-PER\nB. I-PER\n")
    with caplog.at_level(logging.WARNING):
        instances = read({"type": "structkd_conll_ner"}, path)
    assert [i["metadata"]["gold_spans"] for i in instances] == [[(0, 0, "PER")], [(0, 0, "LOC")], [(0, 1, "PER")]]
    assert [i["tags"].labels for i in instances][1] == ["S-LOC", "O"]
    assert "repaired the tags of 2 sentence(s)" in caplog.text and "lines 4, 7" in caplog.text


def test_the_lenient_reading_is_conllevals():
    import random

    from seqeval.metrics.sequence_labeling import get_entities

    from allennlp_structkd.dataset_readers.tag_schemes import spans_from_tags

    rng = random.Random(0)
    for scheme, prefixes in (("IOB2", "BI"), ("BIOES", "BIES")):
        for _ in range(2000):
            tags = [rng.choice(["O"] + [f"{p}-{t}" for p in prefixes for t in "AB"]) for _ in range(rng.randint(1, 6))]
            expected = sorted((start, end, label) for label, start, end in get_entities(tags))
            assert sorted(spans_from_tags(tags, scheme, lenient=True)) == expected, tags
