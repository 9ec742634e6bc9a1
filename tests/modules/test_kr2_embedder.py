
import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.data import Batch, Instance, Vocabulary
from allennlp.data.fields import TextField
from allennlp.data.token_indexers import PretrainedTransformerMismatchedIndexer
from allennlp.data.tokenizers import Token

import allennlp_structkd  # noqa: F401
from allennlp_structkd.modules import KR2Embedder
from tests.conftest import FIXTURES, SAMPLE_DATA

TINY_BERT = str(SAMPLE_DATA / "tiny_bert")
CONFIG = str(FIXTURES.parent.parent / "training_configs" / "kr2_upos.jsonnet")


def embed(embedder, sentences):
    indexer = PretrainedTransformerMismatchedIndexer(TINY_BERT)
    batch = Batch([Instance({"t": TextField([Token(w) for w in ws], {"k": indexer})}) for ws in sentences])
    batch.index_instances(Vocabulary())
    return embedder(**batch.as_tensor_dict()["t"]["k"])


@pytest.mark.parametrize("fusion", ["scalar_mix", "average", "last_four", "layer"])
def test_fusion_strategies_give_one_vector_per_word(fusion):
    embedder = KR2Embedder(TINY_BERT, fusion=fusion, layer=1, projection_dim=5)
    out = embed(embedder, [["Juan", "visitó", "Madrid"], ["Gent"]])
    assert out.shape == (2, 3, 5)
    assert (out[1, 1:] == 0).all()  # padding


def test_fusion_equals_its_definition():
    embedder = KR2Embedder(TINY_BERT, fusion="average")
    layers = tuple(torch.randn(2, 4, 32) for _ in range(embedder.num_layers))
    torch.testing.assert_close(embedder.fuse(layers), sum(layers) / len(layers))
    embedder.fusion, embedder.layer = "layer", -1
    torch.testing.assert_close(embedder.fuse(layers), layers[-1])


def test_the_kresource_stays_frozen_through_training(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFORMER_MODEL", TINY_BERT)
    monkeypatch.setenv("KR2_FUSION", "scalar_mix")
    monkeypatch.setenv("STRUCTKD_EPOCHS", "2")
    before = {k: v.clone() for k, v in KR2Embedder(TINY_BERT).resource.state_dict().items()}
    model = train_model_from_file(CONFIG, str(tmp_path / "run"))
    kr2 = model.text_field_embedder.token_embedder_kresource
    assert all(not p.requires_grad for p in kr2.resource.parameters())
    assert any(p.requires_grad for p in kr2.scalar_mix.parameters())  # the fusion weights do train
    after = kr2.resource.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    # and the optimizer never held them: AllenNLP builds it from parameters that require grad
    from allennlp.training.optimizers import AdamOptimizer

    optimizer = AdamOptimizer([(n, p) for n, p in model.named_parameters() if p.requires_grad])
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not held & {id(p) for p in kr2.resource.parameters()}


def test_bad_fusion():
    with pytest.raises(Exception, match="fusion"):
        KR2Embedder(TINY_BERT, fusion="max")
