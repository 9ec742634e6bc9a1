"""A student over its teacher encoder's word pieces: the restricted vocabulary, the unknown piece, a mismatched teacher."""
import json
import logging
import os
import shutil

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Token, Vocabulary

from allennlp_structkd.data.wordpiece_indexer import WordpieceIndexer
from allennlp_structkd.modules.compressed_embedding import compress
from allennlp_structkd.modules.compressed_wordpiece_embedder import CompressedWordpieceEmbedder
from tests.conftest import SAMPLE_DATA

TINY_BERT = str(SAMPLE_DATA / "tiny_bert")


def test_a_piece_outside_the_vocabulary_is_the_unknown_pieces_vector_and_counted(caplog):
    indexer = WordpieceIndexer(TINY_BERT)
    vocab = Vocabulary(non_padded_namespaces=[])
    for word in ("Juan", "Madrid"):
        for piece in indexer._character_tokenizer.tokenize(word):
            vocab.add_token_to_namespace(piece.text, "wordpieces")
    with caplog.at_level(logging.INFO):
        ids = indexer.tokens_to_indices([Token("Juan"), Token("Zzyzx")], vocab)["token_characters"]
    unknown = vocab.get_token_index(vocab._oov_token, "wordpieces")
    assert unknown not in ids[0] and set(ids[1]) == {unknown}
    assert indexer.pieces_unknown == len(ids[1]) > 0 and "not in the student's vocabulary" in caplog.text
    embedder = CompressedWordpieceEmbedder(vocab, embedding_dim=4, pretrained_file=TINY_BERT)
    # the unknown entry holds the encoder's unknown piece, compressed with the rest: never a silent zero
    assert embedder.weight[unknown].abs().sum() > 0 and embedder.weight[0].abs().sum() == 0
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_BERT)
    table = AutoModel.from_pretrained(TINY_BERT).get_input_embeddings().weight.detach()
    pieces = vocab.get_index_to_token_vocabulary("wordpieces")
    rows = [tokenizer.unk_token_id if i == unknown else tokenizer.convert_tokens_to_ids(pieces[i]) for i in range(1, len(pieces))]
    torch.testing.assert_close(embedder.weight[1:], compress(table[torch.tensor(rows)], 4))


def test_a_teacher_over_another_encoders_vocabulary_is_an_error_naming_both(tmp_path, monkeypatch):
    from allennlp.commands.train import train_model_from_file

    other = tmp_path / "other_bert"
    shutil.copytree(TINY_BERT, other)
    with open(other / "vocab.txt", "a", encoding="utf-8") as handle:
        handle.write("zzyzx\n")  # another vocabulary
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setenv("FROZEN_ENCODER", str(other))
    monkeypatch.setenv("FROZEN_ENCODER_CACHE", str(tmp_path / "features"))
    train_model_from_file(os.path.join(repo, "training_configs", "teachers", "encoder_crf_tagger.jsonnet"), str(tmp_path / "teacher"),
                          overrides=json.dumps({"trainer.num_epochs": 1}))
    teacher = str(tmp_path / "teacher" / "model.tar.gz")
    monkeypatch.setenv("STUDENT_INPUT", "pieces")
    monkeypatch.setenv("STUDENT_ENCODER", TINY_BERT)
    monkeypatch.setenv("TEACHER_ES", teacher)
    monkeypatch.setenv("TEACHER_NL", teacher)
    monkeypatch.setenv("STRUCTKD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match=rf"reads the word pieces of the encoder {TINY_BERT}, but teacher {teacher} reads "
                                                 rf"those of the encoder {other}, another vocabulary"):
        train_model_from_file(os.path.join(repo, "training_configs", "struct_kd_case1a.jsonnet"), str(tmp_path / "student"),
                              overrides=json.dumps({"trainer.num_epochs": 1}))
