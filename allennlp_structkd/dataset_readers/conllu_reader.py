from typing import Dict, Iterator, List, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Field, Instance
from allennlp.data.fields import MetadataField, SequenceLabelField, TextField
from allennlp.data.token_indexers import TokenIndexer
from allennlp.data.tokenizers import Token
from conllu.exceptions import ParseException
from conllu.parser import DEFAULT_FIELDS, parse_line

from allennlp_structkd.dataset_readers.common import (
    DEFAULT_LANG,
    InputError,
    StructKDReader,
    check_heads,
    read_blocks,
)
from allennlp_structkd.structures import rel_pos


@DatasetReader.register("structkd_conllu")
class ConlluReader(StructKDReader):
    """
    CoNLL-U (Universal Dependencies), parsed line by line with the ``conllu`` package.

    Multiword-token ranges (``1-2``) and empty nodes (``8.1``) are skipped; words keep their
    numbering. Fields: ``tokens``, ``upos`` (namespace ``pos``), ``xpos`` (namespace ``xpos``, when
    ``use_xpos``), ``head_indices`` (namespace ``head_index_tags``, 0 = root) and ``head_tags``
    (deprels, namespace ``head_tags``), ``metadata`` (plus ``upos`` and ``heads``).

    Each token line must have 10 tab-separated columns; a non-numeric head, a head out of range or
    gold heads with a cycle are errors naming file and line (or, with ``strict: false``, skips).

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
        How the words are indexed.
    use_xpos : `bool`, optional (default = `False`)
        Also read XPOS.
    read_heads : `bool`, optional (default = `True`)
        Read heads and deprels (`False` for tagging only).
    tag_column : `str`, optional (default = `None`)
        ``"upos"`` or ``"xpos"`` to also give that column as ``tags`` (namespace ``labels``), the field
        the project's taggers train on; ``"relpos"`` gives the labels of the sequence-labeling parser
        instead: the relative-PoS head encoding of Strzyz et al. 2019 joined with the deprel,
        ``"+1@NOUN@nsubj"`` (:mod:`allennlp_structkd.structures.rel_pos`).
    lang : `str`, optional (default = `DEFAULT_LANG`)
        Written into each instance's ``metadata["lang"]``.
    strict : `bool`, optional (default = `True`)
        A bad sentence (malformed line, heads with a cycle) is an error naming its file and line; with
        `False` it is skipped, logged and counted.
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        use_xpos: bool = False,
        read_heads: bool = True,
        tag_column: Optional[str] = None,
        lang: str = DEFAULT_LANG,
        strict: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(token_indexers=token_indexers, lang=lang, strict=strict, **kwargs)
        self.use_xpos = use_xpos
        self.read_heads = read_heads
        if tag_column not in (None, "upos", "xpos", "relpos"):
            raise ValueError(f"tag_column must be 'upos', 'xpos', 'relpos' or null, got {tag_column!r}")
        if tag_column == "relpos" and not read_heads:
            raise ValueError("tag_column 'relpos' needs read_heads: true")
        self.tag_column = tag_column

    def _read_sentences(self, path: str, lang: str) -> Iterator:
        for first_line, block in read_blocks(path, encoding=self.encoding):
            tokens, lines, error = [], [], None
            for number, line in block:
                if line.startswith("#"):
                    continue
                columns = line.split("\t")
                if len(columns) != 10:
                    hint = ("; this looks like CoNLL column data (a word, then a tag, as CoNLL-2002): read it with the "
                            "structkd_conll_ner reader (STRUCTKD_TASK=ner for the configs' NER)"
                            if 2 <= len(line.split()) <= 5 and len(columns) < 10 else "")
                    error = InputError(path, number, f"expected 10 tab-separated columns, got {len(columns)}: {line!r}{hint}")
                    break
                try:
                    token = parse_line(line, DEFAULT_FIELDS)
                except ParseException as exc:
                    error = InputError(path, number, f"{exc} in {line!r}")
                    break
                if not isinstance(token["id"], int):
                    continue  # multiword range or empty node
                if self.read_heads and not isinstance(token["head"], int):
                    error = InputError(path, number, f"head {token['head']!r} of word {token['id']} is not a number")
                    break
                tokens.append(token)
                lines.append(number)
            if error is None and not tokens:
                continue
            if error is None:
                ids = [t["id"] for t in tokens]
                if ids != list(range(1, len(ids) + 1)):
                    error = InputError(path, lines[0], f"word ids are not 1..{len(ids)}: {ids}")
            if error is None and self.read_heads:
                error = check_heads([t["head"] for t in tokens], path, lines)
            if error is not None:
                yield error
                continue
            yield self.text_to_instance(
                [t["form"] for t in tokens],
                [t["upos"] for t in tokens],
                [t["xpos"] or "_" for t in tokens] if (self.use_xpos or self.tag_column == "xpos") else None,
                [t["head"] for t in tokens] if self.read_heads else None,
                [t["deprel"] for t in tokens] if self.read_heads else None,
                lang=lang,
                path=path,
                line=first_line,
            )

    def text_to_instance(
        self,
        words: List[str],
        upos: Optional[List[str]] = None,
        xpos: Optional[List[str]] = None,
        heads: Optional[List[int]] = None,
        deprels: Optional[List[str]] = None,
        lang: str = DEFAULT_LANG,
        path: str = "",
        line: int = 0,
    ) -> Instance:
        # a token carries its PoS, so that a `pos_tag` token indexer can feed it to a model as input
        tokens = TextField([Token(w) for w in words] if upos is None else [Token(w, pos_=p) for w, p in zip(words, upos)],
                           self.token_indexers)
        fields: Dict[str, Field] = {"tokens": tokens}
        if upos is not None:
            fields["upos"] = SequenceLabelField(upos, tokens, label_namespace="pos")
        if xpos is not None:
            fields["xpos"] = SequenceLabelField(xpos, tokens, label_namespace="xpos")
        if heads is not None:
            fields["head_indices"] = SequenceLabelField(heads, tokens, label_namespace="head_index_tags")
        if deprels is not None:
            fields["head_tags"] = SequenceLabelField(deprels, tokens, label_namespace="head_tags")
        tagged = {"upos": upos, "xpos": xpos}.get(self.tag_column or "")
        if self.tag_column == "relpos" and heads is not None:
            if upos is None or deprels is None:
                raise ConfigurationError(f"{path}, line {line}: tag_column 'relpos' needs each word's UPOS and deprel")
            tagged = [f"{label}@{rel}" for label, rel in zip(rel_pos.encode(heads, upos), deprels)]
        if tagged is not None:
            fields["tags"] = SequenceLabelField(tagged, tokens, label_namespace="labels")
        fields["metadata"] = MetadataField(self.metadata(words, lang, path, line, upos=upos, heads=heads, deprels=deprels))
        return Instance(fields)
