from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import TokenEmbedder
from transformers import AutoModel


def compress(weight: torch.Tensor, dim: int, method: str = "svd") -> torch.Tensor:
    """
    ``weight`` ``(V, H)`` reduced to ``(V, dim)``: its coordinates in the top-``dim`` right singular
    vectors, ``X V_dim`` (= ``U_dim Σ_dim``), the best rank-``dim`` approximation's; ``pca`` centres
    the rows first (the authors' released code used PCA).
    """
    if not 0 < dim <= min(weight.shape):
        raise ConfigurationError(f"cannot compress {tuple(weight.shape)} embeddings to {dim} dimensions")
    matrix = weight.detach().double()
    if method == "pca":
        matrix = matrix - matrix.mean(0, keepdim=True)
    elif method != "svd":
        raise ConfigurationError(f"method must be 'svd' or 'pca', got {method!r}")
    _, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    return (matrix @ vh[:dim].t()).to(weight.dtype)


@TokenEmbedder.register("structkd_compressed_embedding")
class CompressedEmbedding(TokenEmbedder):
    """
    XtremeDistil's student embeddings: a trainable wordpiece embedding of size ``embedding_dim``
    initialised from a teacher transformer's wordpiece embeddings (``model_name``, a Hugging Face
    name or folder) reduced by SVD or PCA (:func:`compress`). Index the student's text with the same
    tokenizer, so that ids agree: a ``pretrained_transformer`` indexer gives one vector per
    wordpiece; a ``pretrained_transformer_mismatched`` indexer gives one per word, its wordpieces'
    vectors pooled by ``sub_token_mode`` (``avg`` or ``first``), so that a word-level student
    (whose KD targets are per word) keeps the teacher's wordpiece vocabulary.

    # Parameters

    model_name : `str`, required
        The teacher's Hugging Face model name or local folder.
    embedding_dim : `int`, required
        E, the compressed size; at most the teacher's hidden size.
    method : `str`, optional (default = `"svd"`)
        ``"svd"`` or ``"pca"``.
    trainable : `bool`, optional (default = `True`)
        Whether the compressed embeddings are fine-tuned.
    sub_token_mode : `str`, optional (default = `"avg"`)
        How a word's wordpieces are pooled under a mismatched indexer: ``"avg"`` or ``"first"``.
    """

    def __init__(self, model_name: str, embedding_dim: int, method: str = "svd", trainable: bool = True,
                 sub_token_mode: str = "avg") -> None:
        super().__init__()
        teacher = AutoModel.from_pretrained(model_name)
        weight = compress(teacher.get_input_embeddings().weight, embedding_dim, method)
        self.embedding = torch.nn.Embedding.from_pretrained(weight, freeze=not trainable)
        self.output_dim = embedding_dim
        if sub_token_mode not in ("avg", "first"):
            raise ConfigurationError(f"sub_token_mode must be 'avg' or 'first', got {sub_token_mode!r}")
        self.sub_token_mode = sub_token_mode

    def get_output_dim(self) -> int:
        return self.output_dim

    def forward(self, token_ids: torch.LongTensor, mask: Optional[torch.BoolTensor] = None,
                offsets: Optional[torch.LongTensor] = None, wordpiece_mask: Optional[torch.BoolTensor] = None, type_ids=None, segment_concat_mask=None,
                **kwargs) -> torch.Tensor:
        embedded = self.embedding(token_ids)
        if offsets is None:  # a pretrained_transformer indexer: wordpieces
            return embedded
        from allennlp_structkd.modules.transformer_word_embedder import pool_wordpieces

        return pool_wordpieces(embedded, offsets, self.sub_token_mode)
