import pytest
import torch

import allennlp_structkd  # noqa: F401
from allennlp_structkd.modules import CompressedEmbedding, compress
from tests.conftest import SAMPLE_DATA


@pytest.mark.parametrize("method", ["svd", "pca"])
def test_compression_spans_the_top_subspace(method):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(50, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g, dtype=torch.float64)
    reduced = compress(weight, 4, method)
    centred = weight - weight.mean(0) if method == "pca" else weight
    u, s, vh = torch.linalg.svd(centred, full_matrices=False)
    # the columns span the top-4 left singular subspace ...
    projector = u[:, :4] @ u[:, :4].t()
    torch.testing.assert_close(projector @ reduced, reduced)
    # ... and map back (through the right singular vectors) to the best rank-4 approximation (Eckart-Young)
    torch.testing.assert_close(reduced @ vh[:4], u[:, :4] @ torch.diag(s[:4]) @ vh[:4])
    best = torch.linalg.norm(centred - reduced @ vh[:4])
    torch.testing.assert_close(best, torch.sqrt((s[4:] ** 2).sum()))


def test_embedder_from_a_transformer_folder():
    embedder = CompressedEmbedding(str(SAMPLE_DATA / "tiny_bert"), embedding_dim=8)
    assert embedder.get_output_dim() == 8
    out = embedder(torch.tensor([[1, 2, 3]]))
    assert out.shape == (1, 3, 8) and out.requires_grad
    with pytest.raises(Exception, match="compress"):
        CompressedEmbedding(str(SAMPLE_DATA / "tiny_bert"), embedding_dim=10_000)


@pytest.mark.parametrize("mode", ["avg", "first"])
def test_word_level_student_pools_its_compressed_wordpieces(mode):
    """With a mismatched indexer each word is the avg (or first) of its wordpieces' compressed vectors."""
    from allennlp.data import Batch, Instance, Token, Vocabulary
    from allennlp.data.fields import TextField
    from allennlp.data.token_indexers import PretrainedTransformerMismatchedIndexer

    indexer = PretrainedTransformerMismatchedIndexer(str(SAMPLE_DATA / "tiny_bert"))
    words = ["Juan", "visitó", "Madrid", "."]
    batch = Batch([Instance({"tokens": TextField([Token(w) for w in words], {"tokens": indexer})})])
    batch.index_instances(Vocabulary())
    tensors = batch.as_tensor_dict()["tokens"]["tokens"]
    embedder = CompressedEmbedding(str(SAMPLE_DATA / "tiny_bert"), embedding_dim=8, sub_token_mode=mode)
    out = embedder(**tensors)
    assert out.shape == (1, len(words), 8)
    table = embedder.embedding.weight
    for w, (start, end) in enumerate(tensors["offsets"][0].tolist()):
        pieces = table[tensors["token_ids"][0, start : end + 1]]
        torch.testing.assert_close(out[0, w], pieces[0] if mode == "first" else pieces.mean(0))
