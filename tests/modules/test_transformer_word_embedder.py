"""structkd_transformer_words: words pooled from wordpieces, and a chosen layer exposed for representation KD."""
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Batch, Instance, Token, Vocabulary
from allennlp.data.fields import TextField
from allennlp.data.token_indexers import PretrainedTransformerMismatchedIndexer
from allennlp.modules.token_embedders import TokenEmbedder
from transformers import AutoModel

import allennlp_structkd  # noqa: F401
from tests.conftest import SAMPLE_DATA

TINY_BERT = str(SAMPLE_DATA / "tiny_bert")
SENTENCES = [["Juan", "visitó", "Madrid", "."], ["Gent", "ligt", "in", "België", "en", "Brussel", "ook", "."]]


def batch(max_length=None):
    indexer = PretrainedTransformerMismatchedIndexer(TINY_BERT, max_length=max_length)
    instances = [Instance({"tokens": TextField([Token(w) for w in words], {"tokens": indexer})}) for words in SENTENCES]
    data = Batch(instances)
    data.index_instances(Vocabulary())
    return data.as_tensor_dict()["tokens"]["tokens"]


def embedder(**kwargs):
    module = TokenEmbedder.from_params(Params({"type": "structkd_transformer_words", "model_name": TINY_BERT, **kwargs}))
    return module.eval()


def brute_force_words(layer, mode, tensors):
    """Each word from the reference model's hidden states, one word at a time."""
    model = AutoModel.from_pretrained(TINY_BERT, output_hidden_states=True).eval()
    with torch.no_grad():
        states = model(input_ids=tensors["token_ids"], attention_mask=tensors["wordpiece_mask"].float()).hidden_states[layer]
    words = torch.zeros(states.size(0), tensors["offsets"].size(1), states.size(2))
    for b in range(states.size(0)):
        for w, (start, end) in enumerate(tensors["offsets"][b].tolist()):
            if tensors["mask"][b, w]:
                pieces = states[b, start : end + 1]
                words[b, w] = pieces[0] if mode == "first" else pieces.mean(0)
    return words


@pytest.mark.parametrize("mode", ["avg", "first"])
@pytest.mark.parametrize("layer", [0, 1, -1])
def test_representation_is_the_chosen_layer_pooled_to_words(layer, mode):
    tensors = batch()
    module = embedder(representation_layer=layer, sub_token_mode=mode)
    with torch.no_grad():
        words = module(**tensors)
    expected_last = brute_force_words(-1, mode, tensors)
    expected = brute_force_words(layer, mode, tensors)
    mask = tensors["mask"].unsqueeze(2)
    assert torch.allclose(words * mask, expected_last, atol=1e-5)
    assert torch.allclose(module.representation * mask, expected, atol=1e-5)
    if layer != -1:  # a different layer really is different
        assert not torch.allclose(module.representation * mask, expected_last, atol=1e-3)


def test_long_inputs_folded_into_segments_are_unfolded_before_pooling():
    tensors = batch(max_length=6)  # the 8-word sentence is longer than one segment
    module = embedder(representation_layer=1, max_length=6)
    with torch.no_grad():
        module(**tensors)
    assert module.representation.shape == (2, 8, 32)
    assert torch.isfinite(module.representation).all()
    assert module.representation[1].abs().sum(1).gt(0).all()  # every word of the long sentence has a state


def test_without_a_layer_it_is_allennlps_mismatched_embedder():
    tensors = batch()
    ours = embedder()
    theirs = TokenEmbedder.from_params(Params({"type": "pretrained_transformer_mismatched", "model_name": TINY_BERT})).eval()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert torch.equal(ours(**tensors), theirs(**tensors))
    assert ours.representation is None


def test_a_layer_out_of_range_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="representation_layer 5 out of range"):
        embedder(representation_layer=5)


def test_a_tagger_hands_the_chosen_layer_to_representation_kd():
    from allennlp.models import Model

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["O", "B-PER", "I-PER"], "labels")
    model = Model.from_params(vocab=vocab, params=Params({
        "type": "structkd_maxent_tagger",
        "text_field_embedder": {"token_embedders": {"tokens": {
            "type": "structkd_transformer_words", "model_name": TINY_BERT, "representation_layer": 1}}},
    })).eval()
    tensors = batch()
    with torch.no_grad():
        hidden = model.teacher_distribution({"tokens": tensors}).hidden_states()
    expected = brute_force_words(1, "avg", tensors)
    assert torch.allclose(hidden * tensors["mask"].unsqueeze(2), expected, atol=1e-5)


def test_a_folder_with_only_model_safetensors_loads(tmp_path):
    """Folders saved by recent transformers (e.g. the MiniLM of PyPI) hold model.safetensors only."""
    import shutil

    from safetensors.torch import save_file

    folder = tmp_path / "bert"
    shutil.copytree(TINY_BERT, folder)
    state = torch.load(folder / "pytorch_model.bin")
    (folder / "pytorch_model.bin").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    module = TokenEmbedder.from_params(Params({"type": "structkd_transformer_words", "model_name": str(folder)})).eval()
    reference = embedder()
    for name, value in reference.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
