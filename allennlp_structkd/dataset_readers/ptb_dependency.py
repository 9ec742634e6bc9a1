from typing import Dict, Iterator, List, Optional

from allennlp.data import DatasetReader, Field, Instance
from allennlp.data.fields import MetadataField, SequenceLabelField, TextField
from allennlp.data.token_indexers import TokenIndexer
from allennlp.data.tokenizers import Token

from allennlp_structkd.dataset_readers.common import (
    InputError,
    StructKDReader,
    check_heads,
    read_blocks,
)
from allennlp_structkd.structures import rel_pos


@DatasetReader.register("structkd_ptb_dependency")
class PtbDependencyReader(StructKDReader):
    """
    Penn Treebank dependency files (``.dp``): ``word TAB postag TAB head`` per line, a blank line
    between sentences, heads 1-based with 0 for the root, no relation labels.

    Fields: ``tokens``, ``xpos`` (namespace ``xpos``; also given as ``upos``, namespace ``pos``, so
    that models read PoS from one place), ``head_indices`` (namespace ``head_index_tags``),
    ``metadata``. Relation labels do not exist in this format: models report UAS only. With
    ``relpos_tags: true`` it also gives ``tags``: the relative-PoS head labels (``"+1@NN"``) of the
    sequence-labeling parser.

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
        How the words are indexed.
    relpos_tags : `bool`, optional (default = `False`)
        Also give the relative-PoS head labels as ``tags``.
    lang : `str`, optional (default = `"en"`)
        Written into each instance's ``metadata["lang"]``.
    strict : `bool`, optional (default = `True`)
        A malformed sentence is an error naming its file and line; with `False` it is skipped, logged
        and counted.
    read_heads : `bool`, optional (default = `True`)
        Read the head column (`False` for transfer text whose heads must not be seen).
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        relpos_tags: bool = False,
        lang: str = "en",
        strict: bool = True,
        read_heads: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(token_indexers=token_indexers, lang=lang, strict=strict, **kwargs)
        self.relpos_tags = relpos_tags
        self.read_heads = read_heads  # false: words and tags only (e.g. unlabeled transfer sentences)

    def _read_sentences(self, path: str, lang: str) -> Iterator:
        for first_line, block in read_blocks(path, encoding=self.encoding):
            words, tags, heads, lines, error = [], [], [], [], None
            for number, line in block:
                columns = line.split("\t")
                if len(columns) != 3:
                    error = InputError(path, number, f"expected 3 tab-separated columns (word, tag, head), got {len(columns)}: {line!r}")
                    break
                word, tag, head = columns
                if self.read_heads:  # else the column is not read at all, whatever it holds
                    try:
                        heads.append(int(head))
                    except ValueError:
                        error = InputError(path, number, f"head {head!r} is not a number")
                        break
                words.append(word)
                tags.append(tag)
                lines.append(number)
            if error is None and self.read_heads:
                error = check_heads(heads, path, lines, single_root=True)
            if error is not None:
                yield error
                continue
            yield self.text_to_instance(words, tags, heads if self.read_heads else None, lang=lang, path=path, line=first_line)

    def text_to_instance(
        self,
        words: List[str],
        tags: Optional[List[str]] = None,
        heads: Optional[List[int]] = None,
        lang: str = "en",
        path: str = "",
        line: int = 0,
        upos: Optional[List[str]] = None,
    ) -> Instance:
        tags = tags if tags is not None else upos  # `upos`: the name predictors use for the PoS input
        # a token carries its PoS, so that a `pos_tag` token indexer can feed it to a model as input
        tokens = TextField([Token(w) for w in words] if tags is None else [Token(w, pos_=p) for w, p in zip(words, tags)],
                           self.token_indexers)
        fields: Dict[str, Field] = {"tokens": tokens}
        if tags is not None:
            fields["xpos"] = SequenceLabelField(tags, tokens, label_namespace="xpos")
            fields["upos"] = SequenceLabelField(tags, tokens, label_namespace="pos")
        if heads is not None:
            fields["head_indices"] = SequenceLabelField(heads, tokens, label_namespace="head_index_tags")
            if self.relpos_tags and tags is not None:
                fields["tags"] = SequenceLabelField(rel_pos.encode(heads, tags), tokens, label_namespace="labels")
        fields["metadata"] = MetadataField(self.metadata(words, lang, path, line, upos=tags, heads=heads))
        return Instance(fields)
