"""An exported student's files and a saved pipeline's bytes are untrusted: only the student's own file names
are written, and each damaged file is an error naming the folder, the file and what is wrong."""
import json
import os
import shutil
import threading

import pytest
import spacy
import srsly
import torch

from allennlp_structkd.export import export


@pytest.fixture(scope="module")
def student(teacher_archive, tmp_path_factory):
    return export(teacher_archive, str(tmp_path_factory.mktemp("exported") / "student"))


@pytest.fixture
def copy(student, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(student, target)
    return target


def _add_pipe(folder):
    return spacy.blank("es").add_pipe("structkd_tagger", config={"model": str(folder)})


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "subfolder"])
def test_from_bytes_writes_no_name_but_the_students_files(student, tmp_path, kind):
    import tempfile
    import uuid

    marker = f"structkd-marker-{uuid.uuid4().hex}"
    name, landing = {"dotdot": (f"../{marker}", os.path.join(tempfile.gettempdir(), marker)),
                     "absolute": (str(tmp_path / marker), str(tmp_path / marker)),
                     "subfolder": (f"sub/{marker}", None)}[kind]
    nlp = spacy.blank("es")
    nlp.add_pipe("structkd_tagger", config={"model": student})
    message = srsly.msgpack_loads(nlp.get_pipe("structkd_tagger").to_bytes())
    message["files"][name] = b"written where it should not be"
    fresh = spacy.blank("es").add_pipe("structkd_tagger")
    with pytest.raises(ValueError, match="files that are not a student's"):
        fresh.from_bytes(srsly.msgpack_dumps(message))
    assert landing is None or not os.path.exists(landing)
    # and nothing of them reaches to_disk: the component keeps no files it refused
    with pytest.raises(ValueError, match="has no model"):
        fresh.to_disk(tmp_path / "saved")


def test_a_saved_pipelines_bytes_that_are_not_a_component_are_a_clear_error():
    fresh = spacy.blank("es").add_pipe("structkd_tagger")
    with pytest.raises(ValueError, match="not a saved component"):
        fresh.from_bytes(b"\xc1 not msgpack")
    with pytest.raises(ValueError, match="hold no student files"):
        fresh.from_bytes(srsly.msgpack_dumps({"files": 3}))


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "weights.pt").write_bytes((f / "weights.pt").read_bytes()[:200]),
     r"copy/weights.pt cannot be read as the student's weights"),
    (lambda f: (f / "vocabulary.json").write_text("{not json"), r"copy/vocabulary.json is not valid JSON"),
    (lambda f: (f / "vocabulary.json").write_bytes(b'{"tokens": ["\xff\xfe"]}'), r"copy/vocabulary.json is not UTF-8"),
    (lambda f: (f / "student.json").write_text("[1, 2"), r"copy/student.json is not valid JSON"),
    (lambda f: _edit_json(f / "student.json", lambda d: d["labels"].append("B-NEW")),
     r"copy/weights.pt: \w+ has shape \(9, 9\), but student.json and vocabulary.json make it \(10, 10\)"),
    (lambda f: _edit_json(f / "vocabulary.json", lambda d: d["tokens"].append("extra")),
     r"copy/weights.pt: inputs.tokens.weight has shape"),
    (lambda f: _edit_json(f / "student.json", lambda d: d.pop("inputs")), r"copy/student.json lacks|'inputs' must be"),
    (lambda f: _edit_json(f / "student.json", lambda d: d["inputs"][0].pop("dim")), r"needs a positive whole number 'dim'"),
    (lambda f: _edit_json(f / "student.json", lambda d: d.update(encoder={"hidden_dim": "big"})), r"'encoder' must be null"),
    (lambda f: _edit_json(f / "vocabulary.json", lambda d: d.pop("tokens")), r"vocabulary of input 'tokens' must be a list"),
])
def test_a_damaged_student_folder_names_the_folder_the_file_and_the_fault(copy, damage, message):
    damage(copy)
    with pytest.raises(ValueError, match=message) as error:
        _add_pipe(copy)
    assert "structkd-student-" not in str(error.value)  # never the temporary folder the files were copied to


def test_extra_or_missing_weights_name_the_users_folder(copy):
    state = torch.load(copy / "weights.pt")
    state["surplus"] = torch.zeros(1)
    del state["projection.bias"]
    torch.save(state, copy / "weights.pt")
    with pytest.raises(ValueError, match=r"copy/weights.pt does not fit student.json: weights missing "
                                         r"\['projection.bias'\], unexpected \['surplus'\]"):
        _add_pipe(copy)


def test_non_finite_exported_weights_are_refused_at_load_naming_the_parameter(copy):
    state = torch.load(copy / "weights.pt")
    state["projection.weight"][0, 0] = float("nan")
    torch.save(state, copy / "weights.pt")
    with pytest.raises(ValueError, match=r"copy/weights.pt: projection.weight holds 1 NaN or infinite values"):
        _add_pipe(copy)


def test_a_bad_tokenizer_json_names_its_file(tmp_path):
    from structkd_spacy.inputs import Indexer
    from structkd_spacy.student import StudentFormatError

    (tmp_path / "tokenizer.json").write_text("{}")
    spec = {"inputs": [{"name": "pieces", "type": "pieces", "dim": 4, "unknown_piece": "[UNK]"}]}
    with pytest.raises(StudentFormatError, match=r"somewhere/tokenizer.json is not a tokenizer"):
        Indexer(spec, {"pieces": ["@@PADDING@@", "[UNK]"]}, str(tmp_path), "somewhere")


def test_a_huge_token_costs_no_more_than_its_first_characters(student):
    """Characters are padded to a batch's longest word: a word is read up to 50 characters (as the library's
    structkd_characters indexer reads it), so a 40,000-character token costs what a 50-character one does."""
    from structkd_spacy.inputs import MAX_WORD_CHARACTERS

    tagger = _add_pipe(student)
    tensors, _ = tagger.indexer.tensors([["Juan", "x" * 40_000, "visitó"]])
    widths = [t.size(2) for name, t in tensors.items() if t.dim() == 3]
    assert widths and max(widths) == MAX_WORD_CHARACTERS
    long, short = tagger._predict([["Juan", "x" * 40_000]]), tagger._predict([["Juan", "x" * MAX_WORD_CHARACTERS]])
    assert (long[0][0] == short[0][0]).all()


def test_the_character_bound_is_the_libraries_and_training_reads_it(teacher_archive):
    from allennlp.data import Token, Vocabulary

    from allennlp_structkd.data.character_indexer import MAX_WORD_CHARACTERS, BoundedTokenCharactersIndexer
    from structkd_spacy import inputs

    assert inputs.MAX_WORD_CHARACTERS == MAX_WORD_CHARACTERS
    indexer = BoundedTokenCharactersIndexer(min_padding_length=3)
    vocabulary = Vocabulary()
    indexed = indexer.tokens_to_indices([Token("a" * 1000), Token("ab")], vocabulary)
    assert [len(chars) for chars in indexed["token_characters"]] == [MAX_WORD_CHARACTERS, 2]
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "training_configs", "common.libsonnet")) as handle:
        assert "structkd_characters" in handle.read()


def test_threads_sharing_one_pipeline_restore_the_process_thread_count(student):
    """Two threads inside the model at once, leaving in the order that broke a per-call save and restore: the first
    out restored the count while the second ran, and the second then restored the count the first had set."""
    tagger = _add_pipe(student)
    nlp_threads_before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, first_left = threading.Barrier(2), threading.Event()
    original = tagger._predict
    order = []

    def predict(sentences):
        result = original(sentences)
        inside.wait(timeout=30)
        if threading.current_thread().name == "first":
            order.append("first")
            first_left.set()
        else:
            first_left.wait(timeout=30)
            order.append("second")
        return result

    tagger._predict = predict
    try:
        workers = [threading.Thread(target=lambda: list(tagger.pipe([_doc()])), name=name) for name in ("first", "second")]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert order == ["first", "second"]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(nlp_threads_before)


def _doc():
    return spacy.blank("es")("Juan visitó Madrid .")
