"""The frozen-encoder features: what the encoder computes, cached and rebuilt when they do not match."""
import os
import shutil
import sqlite3

import numpy as np
import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Token, Vocabulary

import allennlp_structkd  # noqa: F401
from allennlp_structkd.data import FrozenEncoderIndexer
from allennlp_structkd.kd.cache import encode_entry
from allennlp_structkd.modules import LayerMixEmbedder
from tests.conftest import SAMPLE_DATA

TINY = str(SAMPLE_DATA / "tiny_bert")
WORDS = ["Juan", "visitó", "Madrid", "ayer", "."]


def direct(words, layers, pooling="avg"):
    """The features by hand: the encoder on the sentence's wordpieces, each word's pieces pooled."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(TINY), AutoModel.from_pretrained(TINY).eval()
    pieces = [tokenizer.tokenize(w) or [tokenizer.unk_token] for w in words]
    ids = tokenizer.build_inputs_with_special_tokens(tokenizer.convert_tokens_to_ids([p for ps in pieces for p in ps]))
    with torch.no_grad():
        states = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    out, start = [], 1
    for ps in pieces:
        span = torch.stack([states[layer][0, start : start + len(ps)] for layer in layers], dim=1)
        out.append(span[0] if pooling == "first" else span.mean(0))
        start += len(ps)
    return torch.stack(out).numpy()


@pytest.mark.parametrize("pooling", ["avg", "first"])
def test_features_are_the_encoders_pooled_layers(tmp_path, pooling):
    indexer = FrozenEncoderIndexer(TINY, layers=[0, -1], pooling=pooling, cache_directory=str(tmp_path))
    features = indexer.tokens_to_indices([Token(w) for w in WORDS], Vocabulary())["features"]
    assert features.shape == (5, 2, 32) and features.dtype == np.float16
    np.testing.assert_allclose(features.astype(np.float32), direct(WORDS, [0, -1], pooling), atol=2e-3, rtol=2e-3)


def test_long_sentences_are_encoded_in_windows_of_whole_words(tmp_path):
    indexer = FrozenEncoderIndexer(TINY, layers=[-1], cache_directory=str(tmp_path), max_pieces=4)
    words = WORDS * 3
    features = indexer.encode([words])[0]
    assert not (features == 0).all(axis=(1, 2)).any()  # every word has features
    pieces = [len(indexer._tokenizer.tokenize(w)) for w in words]
    windows, current, size = [], [], 0
    for i, count in enumerate(pieces):
        if current and size + count > 4:
            windows.append(current)
            current, size = [], 0
        current.append(i)
        size += count
    windows.append(current)
    for window in windows:  # each window is the encoder run on those words alone
        expected = direct([words[i] for i in window], [-1])
        np.testing.assert_allclose(features[window].astype(np.float32), expected, atol=2e-3, rtol=2e-3)


def test_cached_features_are_read_back_and_mismatched_ones_rebuilt(tmp_path, monkeypatch):
    indexer = FrozenEncoderIndexer(TINY, cache_directory=str(tmp_path))
    (first,) = indexer.features([WORDS])
    fresh = FrozenEncoderIndexer(TINY, cache_directory=str(tmp_path))
    monkeypatch.setattr(fresh, "encode", lambda sentences: pytest.fail("a cached sentence was encoded again"))
    np.testing.assert_array_equal(fresh.features([WORDS])[0], first)
    monkeypatch.undo()
    # an entry that does not fit its sentence (another length) is recomputed, never used
    with sqlite3.connect(fresh.cache.path) as connection:
        connection.execute("UPDATE targets SET value = ?", (encode_entry({"features": np.zeros((2, 3, 32), np.float16)}),))
    again = FrozenEncoderIndexer(TINY, cache_directory=str(tmp_path))
    np.testing.assert_array_equal(again.features([WORDS])[0], first)


def test_another_encoder_or_other_layers_use_another_cache(tmp_path):
    other = tmp_path / "other_bert"
    shutil.copytree(TINY, other)
    state = torch.load(other / "pytorch_model.bin")
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, other / "pytorch_model.bin")
    paths = {FrozenEncoderIndexer(TINY, cache_directory=str(tmp_path)).cache.path,
             FrozenEncoderIndexer(str(other), cache_directory=str(tmp_path)).cache.path,
             FrozenEncoderIndexer(TINY, layers=[-1], cache_directory=str(tmp_path)).cache.path}
    assert len(paths) == 3


def test_a_missing_encoder_folder_names_the_variable(tmp_path):
    with pytest.raises(ConfigurationError, match="set FROZEN_ENCODER"):
        FrozenEncoderIndexer(str(tmp_path / "nowhere"))


def test_layer_mix_is_a_learned_scalar_mix():
    mix = LayerMixEmbedder(num_layers=3, hidden_size=4)
    features = torch.randn(2, 5, 3, 4)
    with torch.no_grad():
        mix.mix.scalar_parameters[1].fill_(10.0)  # (almost) only layer 1
        mix.mix.gamma.fill_(2.0)
    torch.testing.assert_close(mix(features), 2.0 * features[:, :, 1], atol=1e-3, rtol=1e-3)
    assert sum(p.numel() for p in mix.parameters() if p.requires_grad) == 4


def test_the_encoder_teacher_config_trains_as_written(tmp_path, monkeypatch):
    from allennlp.commands.train import train_model_from_file
    from allennlp.models.archival import load_archive

    monkeypatch.setenv("FROZEN_ENCODER_CACHE", str(tmp_path / "features"))
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "training_configs", "teachers",
                          "encoder_crf_tagger.jsonnet")
    train_model_from_file(config, str(tmp_path / "run"), '{"trainer.num_epochs": 1}')
    model = load_archive(str(tmp_path / "run" / "model.tar.gz")).model
    frozen = [p for name, p in model.named_parameters() if "encoder.mix" in name]
    assert frozen and len(os.listdir(tmp_path / "features")) >= 1  # features went through the cache
    # serving pays for the encoder: its parameters count, and its forward passes are timed
    from transformers import AutoModel

    from experiments import demo_job

    encoder_parameters = sum(p.numel() for p in AutoModel.from_pretrained(TINY).parameters())
    head_parameters = sum(p.numel() for p in model.parameters())
    timed = []
    real = FrozenEncoderIndexer.encode
    monkeypatch.setattr(FrozenEncoderIndexer, "encode", lambda self, sentences: timed.append(len(sentences)) or real(self, sentences))
    row = demo_job.measure(str(tmp_path / "run" / "model.tar.gz"), [WORDS] * 40)
    assert row["parameters"] == head_parameters + encoder_parameters
    assert sum(timed) >= 2 * 40 and row["sentences_per_second"] > 0  # every sentence encoded, in each repeat

    # as a teacher, new sentences are encoded in one pass per batch, not one per sentence
    from allennlp_structkd.kd import KDLoss
    from allennlp_structkd.kd.teacher import Teacher

    timed.clear()
    teacher = Teacher(str(tmp_path / "run" / "model.tar.gz"), -1, str(tmp_path / "teacher_cache"))
    fresh = [[f"nuevo{i}", "visitó", "Madrid"] for i in range(5)]
    results = teacher.annotate([{"words": words} for words in fresh], KDLoss.by_name("structural")())
    # (each sentence's targets in Structural KD's storage form: the teacher's chain scores, one row a word)
    assert timed == [5] and [r["teacher_emissions"].shape[0] for r in results] == [3] * 5
