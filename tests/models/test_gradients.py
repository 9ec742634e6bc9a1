"""
Every parameter of every model can learn: in float64, each gets a gradient far above rounding.

AllenNLP's ``ModelTestCase`` checks that no gradient is exactly zero, in float32. A parameter whose
gradient is zero in exact arithmetic (a constant added to every score of a softmax) passes or
fails that check depending on the processor's rounding. Here such a parameter fails everywhere:
float64 rounding leaves ~1e-17, far below the threshold, and a real gradient is far above it.

AllenNLP's character CNN is left out (a word embedding of the same width takes its place): in float64
its mask becomes a float32 ``-inf`` and its output NaN.
"""
import json

import pytest
import torch
from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Vocabulary
from allennlp.models import Model

import allennlp_structkd  # noqa: F401
from tests.conftest import FIXTURES, SAMPLE_DATA

DATA = FIXTURES / "data"
NER = json.dumps({"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")})
UD = str(SAMPLE_DATA / "ud_en_small.conllu")

MODELS = {
    "crf_tagger": ("crf_tagger.jsonnet", NER, None),
    "maxent_tagger": ("maxent_tagger.jsonnet", NER, None),
    "span_ner": ("span_ner.jsonnet", NER, None),
    "biaffine_parser": ("parser.jsonnet", UD, "biaffine"),
    "second_order_parser": ("parser.jsonnet", UD, "second_order"),
    "seq_label_parser": ("seq_label_parser.jsonnet", UD, None),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_parameter_gets_a_gradient_above_rounding(name, monkeypatch):
    config, data, parser = MODELS[name]
    if parser:
        monkeypatch.setenv("STRUCTKD_TEST_PARSER", parser)
    torch.manual_seed(0)
    params = Params.from_file(str(FIXTURES / "configs" / config))
    embedder = params["model"]["text_field_embedder"]["token_embedders"]
    if "token_characters" in embedder:
        width = embedder["tokens"]["embedding_dim"] + embedder["token_characters"]["encoder"]["num_filters"]
        params["model"]["text_field_embedder"] = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": width}}}
        params["dataset_reader"]["token_indexers"] = {"tokens": {"type": "single_id"}}
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(data))
    vocab = Vocabulary.from_instances(instances)
    model = Model.from_params(vocab=vocab, params=params.pop("model")).double()
    model.eval()  # no dropout: the gradient is the loss's own
    batch = Batch(instances)
    batch.index_instances(vocab)
    model(**batch.as_tensor_dict())["loss"].backward()
    weak = {}
    for parameter_name, parameter in model.named_parameters():
        if parameter.requires_grad:
            gradient = torch.zeros(()) if parameter.grad is None else parameter.grad
            assert torch.isfinite(gradient).all(), parameter_name
            if gradient.abs().max().item() < 1e-9:
                weak[parameter_name] = gradient.abs().max().item()
    assert not weak, f"parameters that cannot learn (largest |gradient| in float64): {weak}"
