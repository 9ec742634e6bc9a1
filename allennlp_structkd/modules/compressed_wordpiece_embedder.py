"""
``structkd_compressed_wordpieces``: a student's word vectors from its teacher encoder's word-piece
embeddings, compressed by SVD and restricted to the pieces of the student's vocabulary.
"""
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_structkd.allennlp_private import oov_token, padding_token
from allennlp_structkd.modules.compressed_embedding import compress


@TokenEmbedder.register("structkd_compressed_wordpieces")
class CompressedWordpieceEmbedder(TokenEmbedder):
    """
    XtremeDistil's student input (Mukherjee & Awadallah 2020), kept small: the rows of a pretrained
    encoder's word-piece embedding matrix for the pieces in the student's vocabulary namespace
    (:class:`~allennlp_structkd.data.wordpiece_indexer.WordpieceIndexer` fills it from the text the
    student reads), compressed to ``embedding_dim`` by SVD over those rows (:func:`compress`); the
    namespace's unknown entry takes the encoder's unknown piece, padding is zero. A word is the
    average of its pieces' vectors. The vectors keep training with the student.

    ``pretrained_file`` names the encoder folder, as AllenNLP's ``embedding`` names its vectors file:
    a model loaded from its archive gets its trained vectors from the archive, and AllenNLP drops this
    key then, so that serving the student does not need the encoder. ``encoder_fingerprint`` records
    which encoder's vocabulary the vectors came from (what the teacher reader compares with its
    teachers' encoders).

    # Parameters

    vocab : `Vocabulary`
        Gives the namespace's pieces.
    embedding_dim : `int`, required
        The compressed size, at most the encoder's hidden size.
    pretrained_file : `str`, optional (default = `None`)
        The encoder folder (a local Hugging Face model) whose input embeddings initialise the pieces.
    vocab_namespace : `str`, optional (default = `"wordpieces"`)
        The namespace of the indexer's pieces.
    method : `str`, optional (default = `"svd"`)
        ``"svd"`` or ``"pca"`` (see :func:`compress`).
    trainable : `bool`, optional (default = `True`)
        Whether the vectors train.
    """

    def __init__(self, vocab: Vocabulary, embedding_dim: int, pretrained_file: Optional[str] = None,
                 vocab_namespace: str = "wordpieces", method: str = "svd", trainable: bool = True) -> None:
        super().__init__()
        size = vocab.get_vocab_size(vocab_namespace)
        self.vocab_namespace = vocab_namespace
        self.output_dim = embedding_dim
        weight = torch.zeros(size, embedding_dim)
        if pretrained_file is not None:
            weight = self._from_encoder(vocab, pretrained_file, embedding_dim, method)
        self.weight = torch.nn.Parameter(weight, requires_grad=trainable)

    def _from_encoder(self, vocab: Vocabulary, folder: str, dim: int, method: str) -> torch.Tensor:
        from transformers import AutoModel

        from allennlp_structkd.data.wordpiece_indexer import load_tokenizer

        tokenizer = load_tokenizer(folder)
        table = AutoModel.from_pretrained(folder).get_input_embeddings().weight.detach()
        pieces = vocab.get_index_to_token_vocabulary(self.vocab_namespace)
        padding, unknown = padding_token(vocab), oov_token(vocab)
        ids = []
        for index in range(len(pieces)):
            piece = pieces[index]
            if piece == padding:
                ids.append(-1)
            elif piece == unknown:
                ids.append(tokenizer.unk_token_id)
            else:
                piece_id = tokenizer.convert_tokens_to_ids(piece)
                if piece_id is None or piece_id == tokenizer.unk_token_id:
                    raise ConfigurationError(
                        f"piece {piece!r} of namespace {self.vocab_namespace!r} is not a piece of the encoder {folder}: "
                        "the vocabulary was made with another encoder's tokenizer")
                ids.append(piece_id)
        kept = torch.tensor([i for i in ids if i >= 0])
        if dim > min(len(kept), table.size(1)):
            raise ConfigurationError(f"cannot compress {len(kept)} piece vectors of size {table.size(1)} to {dim}")
        compressed = compress(table[kept], dim, method)
        weight = torch.zeros(len(ids), dim)
        weight[torch.tensor([k for k, i in enumerate(ids) if i >= 0])] = compressed
        return weight

    def get_output_dim(self) -> int:
        return self.output_dim

    def forward(self, token_characters: torch.Tensor) -> torch.Tensor:
        """``token_characters`` ``(B, n_words, n_pieces)`` piece ids, 0 padding → word vectors ``(B, n_words, dim)``."""
        mask = (token_characters != 0).unsqueeze(-1)
        vectors = torch.nn.functional.embedding(token_characters, self.weight) * mask
        return vectors.sum(2) / mask.sum(2).clamp(min=1)
