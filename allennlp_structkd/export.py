"""
Export a distilled student from its AllenNLP archive to a folder that serves without AllenNLP.

    python -m allennlp_structkd.export ARCHIVE OUTPUT_DIR [--onnx]

The folder (see ``structkd_spacy.student`` for its files) holds the weights, the vocabularies, the
labels and their scheme, the CRF's transitions with the forbidden ones in them, the languages the
student was trained on and a format version; the ``structkd-spacy`` package (``spacy_component/``)
serves it in a spaCy pipeline with PyTorch alone; with ``--onnx`` the folder also holds the network in
ONNX (``network.onnx``), which the package serves with ONNX Runtime and no PyTorch. It exports students: CRF and MaxEnt taggers and
the sequence-labeling parser, over words, characters and word pieces, with a BiLSTM or no encoder.
A teacher over a frozen or fine-tuned encoder, a graph (biaffine, second-order) parser or a span
NER model is refused with a clear error: serve those through AllenNLP's predictors.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import secrets
from typing import Dict, List, cast

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.allennlp_private import character_encoder_layout, token_embedders, word_embedding_layout, wrapped_module
from allennlp_structkd.archives import check_finite, load_model_archive
from allennlp_structkd.data.character_indexer import MAX_WORD_CHARACTERS
from allennlp_structkd.dataset_readers.common import training_languages
from structkd_spacy.folder import FILES, FORMAT, FORMAT_VERSION, OPTIONAL_FILES  # the format, defined once

SUPPORTED = ("structkd_crf_tagger (a CRF tagger), structkd_maxent_tagger (a MaxEnt tagger) or structkd_seq_label_parser "
             "(the sequence-labeling parser), over words (embedding), characters (character_encoding with a cnn) or word "
             "pieces (structkd_compressed_wordpieces), with an lstm encoder or none")


class ExportError(ConfigurationError):
    """What cannot be exported, and what can."""


def _vocabulary(vocab, namespace: str) -> List[str]:
    return [vocab.get_token_from_index(i, namespace) for i in range(vocab.get_vocab_size(namespace))]


def describe(archive_path: str):
    """``(student.json, {vocabulary name: tokens}, state dict, tokenizer folder or None)`` of an archive's student."""
    from allennlp.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer
    from allennlp.modules.seq2seq_encoders import PytorchSeq2SeqWrapper
    from allennlp.modules.seq2vec_encoders import CnnEncoder
    from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
    from allennlp.modules.token_embedders import Embedding, TokenCharactersEncoder

    from allennlp_structkd.data.wordpiece_indexer import WordpieceIndexer
    from allennlp_structkd.models.crf_tagger import CrfTagger
    from allennlp_structkd.models.maxent_tagger import MaxEntTagger
    from allennlp_structkd.models.seq_label_parser import SequenceLabelingParser
    from allennlp_structkd.modules.compressed_wordpiece_embedder import CompressedWordpieceEmbedder

    archive = load_model_archive(archive_path)
    model, config = archive.model, archive.config.as_dict(quiet=True)
    if isinstance(model, SequenceLabelingParser):
        kind = "seq_label_parser"
    elif isinstance(model, CrfTagger):
        kind = "crf_tagger"
    elif isinstance(model, MaxEntTagger):
        kind = "maxent_tagger"
    else:
        raise ExportError(f"{archive_path} holds a {config['model'].get('type')!r} model, which cannot be exported; what can: "
                          f"{SUPPORTED}")
    reader = archive.validation_dataset_reader
    indexers = getattr(reader, "token_indexers", None) or {}
    state: Dict[str, torch.Tensor] = {}
    inputs, vocabularies, tokenizer = [], {}, None
    embedders = token_embedders(cast(BasicTextFieldEmbedder, model.text_field_embedder))
    for name in sorted(embedders):  # AllenNLP concatenates its embedders in sorted order of their names
        embedder, indexer = embedders[name], indexers.get(name)
        words = word_embedding_layout(embedder, indexer) if isinstance(embedder, Embedding) and isinstance(
            indexer, SingleIdTokenIndexer) else None
        if words is not None and words["projection"] is None:
            if words["start_tokens"] or words["end_tokens"] or words["feature_name"] != "text":
                raise ExportError(f"input {name!r}: start/end tokens and token features other than the text cannot be exported")
            inputs.append({"name": name, "type": "words", "dim": embedder.get_output_dim(), "lowercase": cast(SingleIdTokenIndexer, indexer).lowercase_tokens})
            vocabularies[name] = _vocabulary(model.vocab, words["namespace"])
            state[f"inputs.{name}.weight"] = embedder.weight
        elif isinstance(embedder, TokenCharactersEncoder) and isinstance(indexer, TokenCharactersIndexer):
            encoder, embedding, settings = character_encoder_layout(embedder, indexer)
            if not isinstance(encoder, CnnEncoder) or encoder.projection_layer is not None or not isinstance(
                    settings["activation"], torch.nn.ReLU) or not isinstance(embedding, Embedding):
                raise ExportError(f"input {name!r}: only characters through a cnn (ReLU, no projection) can be exported")
            if settings["byte_encoding"] is not None or settings["start_tokens"] or settings["end_tokens"]:
                raise ExportError(f"input {name!r}: byte-encoded characters or character start/end tokens cannot be exported")
            inputs.append({"name": name, "type": "characters", "dim": embedding.get_output_dim(),
                           "filters": settings["filters"], "ngram_sizes": settings["ngram_sizes"],
                           "min_padding": settings["min_padding"], "lowercase": settings["lowercase"],
                           "max_characters": getattr(indexer, "max_characters", MAX_WORD_CHARACTERS)})
            vocabularies[name] = _vocabulary(model.vocab, settings["namespace"])
            state[f"inputs.{name}.embedding.weight"] = embedding.weight
            for k in range(len(settings["ngram_sizes"])):
                layer = getattr(encoder, f"conv_layer_{k}")
                state[f"inputs.{name}.convolutions.{k}.weight"], state[f"inputs.{name}.convolutions.{k}.bias"] = layer.weight, layer.bias
        elif isinstance(embedder, CompressedWordpieceEmbedder) and isinstance(indexer, WordpieceIndexer):
            from allennlp_structkd.data.wordpiece_indexer import load_tokenizer

            tokenizer = load_tokenizer(indexer.model_name)
            inputs.append({"name": name, "type": "pieces", "dim": embedder.get_output_dim(),
                           "max_pieces": indexer.max_pieces, "unknown_piece": tokenizer.unk_token})
            vocabularies[name] = _vocabulary(model.vocab, embedder.vocab_namespace)
            state[f"inputs.{name}.embedding.weight"] = embedder.weight
        else:
            raise ExportError(f"input {name!r} of {archive_path} is a {type(embedder).__name__} read by a "
                              f"{type(indexer).__name__}: a teacher's encoder features, a transformer or another input "
                              f"cannot be exported; what can: {SUPPORTED}")
    encoder = None
    if model.encoder is not None:
        lstm = wrapped_module(model.encoder)
        if not isinstance(model.encoder, PytorchSeq2SeqWrapper) or not isinstance(lstm, torch.nn.LSTM) or model.encoder.stateful:
            raise ExportError(f"the encoder of {archive_path} is a {type(model.encoder).__name__}: only an lstm can be exported")
        encoder = {"type": "lstm", "hidden_dim": lstm.hidden_size, "layers": lstm.num_layers, "bidirectional": lstm.bidirectional}
        state.update({f"encoder.{k}": v for k, v in lstm.state_dict().items()})
    state["projection.weight"], state["projection.bias"] = model.tag_projection.weight, model.tag_projection.bias
    if isinstance(model, CrfTagger):  # the forbidden transitions are in the exported scores (AllenNLP's constraint tables)
        state["transitions"] = model.transitions + model.transition_penalty
        state["start"] = model.start_transitions + model.start_penalty
        state["end"] = model.end_transitions + model.end_penalty
    spec = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "labels": list(model.labels),
        "label_encoding": model.label_encoding, "languages": training_languages(config), "inputs": inputs, "encoder": encoder,
    }
    if kind == "seq_label_parser":
        spec["parser"] = {"pos": _vocabulary(model.vocab, "pos"), "deprels": _vocabulary(model.vocab, "head_tags")}
    with open(archive_path, "rb") as handle:
        spec["source"] = {"archive": os.path.basename(archive_path), "sha256": hashlib.sha256(handle.read()).hexdigest()}
    return spec, vocabularies, {k: v.detach().cpu().clone() for k, v in state.items()}, tokenizer


STUDENT_FILES = FILES + OPTIONAL_FILES
ONNX_OPSET = 17


def _is_earlier_export(folder: str) -> bool:
    """Whether ``folder`` holds an exported student and nothing else (what export may replace)."""
    try:
        names = os.listdir(folder)
        with open(os.path.join(folder, "student.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(spec, dict) and spec.get("format") == FORMAT and set(names) <= set(STUDENT_FILES)


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def check_output_folder(archive_path: str, output_dir: str) -> None:
    """Export never removes what it did not write: the output may be a new folder or an earlier export, never the
    current folder, a folder holding the archive, or any other existing folder or file."""
    if not os.path.lexists(output_dir):
        return
    if not os.path.isdir(output_dir) or os.path.islink(output_dir):
        raise ExportError(f"{output_dir} exists and is not a folder: give a new folder to export to")
    if _inside(os.getcwd(), output_dir):
        raise ExportError(f"{output_dir} is the current folder (or holds it): give a new folder to export to")
    if _inside(archive_path, output_dir):
        raise ExportError(f"{output_dir} holds the archive {archive_path}: give a new folder to export to")
    if not _is_earlier_export(output_dir):
        held = sorted(os.listdir(output_dir))
        raise ExportError(f"{output_dir} exists and is not an earlier export (it holds {', '.join(held[:5]) or 'nothing'}"
                          f"{', ...' if len(held) > 5 else ''}): export writes a new folder, or replaces one it wrote; "
                          "give a new folder (nothing was changed)")


def write_onnx(folder: str) -> str:
    """
    The network of the student exported in ``folder`` (its weights read back as the serving package reads them)
    written to ``folder/network.onnx``: inputs each input's index array (int64, words ``(B, n)``, characters or pieces
    ``(B, n, C)``) and ``mask`` ``(B, n)`` (bool), every size dynamic; outputs ``scores`` ``(B, n, L)``, and a CRF's
    ``transitions`` ``(L, L)``, ``start`` and ``end`` ``(L,)``. PyTorch's TorchScript-based exporter (opset 17),
    which keeps the BiLSTM's packed sequences as ONNX's sequence lengths, so padding changes no score. Needs the
    ``onnx`` package.
    """
    import warnings

    if importlib.util.find_spec("onnx") is None:
        raise ExportError("exporting to ONNX needs the onnx package (pip install 'onnx>=1.16'); nothing was written")
    from structkd_spacy.student import load

    spec, _, model = load(folder)
    names = [item["name"] for item in spec["inputs"]]
    crf = spec["kind"] == "crf_tagger"

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = model

        def forward(self, *arrays: torch.Tensor):
            scores = self.student(dict(zip(names, arrays[:-1])), arrays[-1])
            if not crf:
                return scores
            student = self.student
            # outputs of their own, not folded into constants (which would lose their names; ONNX Runtime folds them)
            return scores, student.transitions * 1, student.start * 1, student.end * 1

    # an example batch: two sentences of 3 and 2 words, each word 6 ids wide, every id the unknown token's
    mask = torch.tensor([[True, True, True], [True, True, False]])
    width = max([6] + [size for item in spec["inputs"] for size in item.get("ngram_sizes") or []])
    example = tuple(torch.ones((2, 3) if item["type"] == "words" else (2, 3, width), dtype=torch.long) * mask.long().view(
        2, 3, *([1] if item["type"] != "words" else [])) for item in spec["inputs"]) + (mask,)
    axes = {name: {0: "batch", 1: "words", **({2: f"{name}_width"} if item["type"] != "words" else {})}
            for name, item in zip(names, spec["inputs"])}
    outputs = ["scores", "transitions", "start", "end"] if crf else ["scores"]
    target = os.path.join(folder, "network.onnx")
    with warnings.catch_warnings():  # the tracer's notes on Python branches it records (checked by the parity tests)
        warnings.simplefilter("ignore")
        torch.onnx.export(Network().eval(), example, target, input_names=[*names, "mask"], output_names=outputs,
                          dynamic_axes={**axes, "mask": {0: "batch", 1: "words"}, "scores": {0: "batch", 1: "words"}},
                          opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=False)
    return target


def export(archive_path: str, output_dir: str, onnx: bool = False) -> str:
    """Write the student of ``archive_path`` to ``output_dir`` (atomically: a whole folder or none); returns it.
    ``output_dir`` must be new or an earlier export, which is replaced (see :func:`check_output_folder`);
    ``onnx``: also the network in ONNX (:func:`write_onnx`)."""
    check_output_folder(archive_path, output_dir)
    spec, vocabularies, state, tokenizer = describe(archive_path)
    check_finite(state.items(), f"the student of {archive_path}")
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    # made with os.mkdir, so it gets the mode every folder gets here (mkdtemp's would be 0700)
    staging = os.path.join(parent, f".export-{secrets.token_hex(8)}")
    os.mkdir(staging)
    try:
        with open(os.path.join(staging, "student.json"), "w", encoding="utf-8") as handle:
            json.dump(spec, handle, indent=2, ensure_ascii=False)
        with open(os.path.join(staging, "vocabulary.json"), "w", encoding="utf-8") as handle:
            json.dump(vocabularies, handle, ensure_ascii=False)
        torch.save(state, os.path.join(staging, "weights.pt"))
        if tokenizer is not None:
            if not getattr(tokenizer, "is_fast", False):
                raise ExportError("a word-piece student's tokenizer must be a fast (tokenizers) tokenizer to be exported")
            tokenizer.backend_tokenizer.save(os.path.join(staging, "tokenizer.json"))
        if onnx:
            write_onnx(staging)
        check_output_folder(archive_path, output_dir)  # again: it may have changed while the student was read
        earlier = None
        if os.path.lexists(output_dir):  # an earlier export: set aside, replaced, then its own files removed
            earlier = staging + ".earlier"
            os.rename(output_dir, earlier)
        os.rename(staging, output_dir)
        if earlier is not None:
            for name in os.listdir(earlier):
                os.remove(os.path.join(earlier, name))
            os.rmdir(earlier)
    except BaseException:
        for name in os.listdir(staging) if os.path.isdir(staging) else ():
            os.remove(os.path.join(staging, name))
        if os.path.isdir(staging):
            os.rmdir(staging)
        raise
    return output_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="a student's model.tar.gz (or its training folder)")
    parser.add_argument("output_dir", help="the folder to write: a new one, or an earlier export (replaced)")
    parser.add_argument("--onnx", action="store_true", help="also write the network in ONNX (network.onnx), which "
                        "structkd-spacy serves with ONNX Runtime and no PyTorch (needs the onnx package here)")
    args = parser.parse_args()
    archive = os.path.join(args.archive, "model.tar.gz") if os.path.isdir(args.archive) else args.archive
    if not os.path.isfile(archive):
        parser.error(f"no model archive at {archive}")
    try:
        export(archive, args.output_dir, onnx=args.onnx)
    except ConfigurationError as error:
        parser.exit(2, f"cannot export {archive}: {error}\n")
    print(f"exported {archive} -> {args.output_dir}")


if __name__ == "__main__":
    main()
