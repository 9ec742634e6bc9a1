"""
Temperature for the parser teachers (Cases 1b, 2b) and the span-NER teacher (Case 4), against
their definitions by enumeration: global mode divides every teacher score by T before inference,
local mode tempers each word's distribution, softmax(log p / T).
"""
import itertools
import math

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model

from allennlp_structkd.kd import KDLoss
from allennlp_structkd.models.span_ner import SpanNer
from allennlp_structkd.structures import second_order, span_dp
from tests import brute_force

TEMPERATURES = [1.0, 0.5, 3.0]


def objective(temperature, mode, kind="structural"):
    return KDLoss.from_params(Params({"type": kind, "temperature": temperature, "temperature_mode": mode}))


def local(probs, temperature):
    return torch.where(probs > 0, probs.log() / temperature, torch.tensor(float("-inf"))).softmax(-1)


def parser(kind):
    torch.manual_seed(0)
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["w1", "w2", "w3"], "tokens")
    vocab.add_tokens_to_namespace(["NOUN", "VERB"], "pos")
    vocab.add_tokens_to_namespace(["nsubj", "obj", "root"], "head_tags")
    params = {
        "type": f"structkd_{kind}_parser",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}},
        "pos_tag_embedding": {"embedding_dim": 2, "vocab_namespace": "pos"},
        "encoder": {"type": "lstm", "input_size": 6, "hidden_size": 3, "bidirectional": True},
        "arc_representation_dim": 5, "label_representation_dim": 4, "dropout": 0.0,
    }
    if kind == "second_order":
        params["second_order_dim"] = 3
    model = Model.from_params(vocab=vocab, params=Params(params))
    for parameter in model.parameters():  # sharper scores than the initialisation's, so T matters
        torch.nn.init.normal_(parameter, std=1.0)
    return model.eval()


TOKENS = torch.tensor([[2, 3, 4], [4, 2, 0]])
UPOS = torch.tensor([[0, 1, 0], [1, 1, 0]])
LENGTHS = [3, 2]


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("mode", ["global", "local"])
def test_biaffine_teacher_marginals_by_enumeration(temperature, mode):
    model = parser("biaffine")
    targets, _, _ = model.teacher_outputs(objective(temperature, mode), {"tokens": {"tokens": TOKENS}}, upos=UPOS)
    encoded, mask = model.encode({"tokens": {"tokens": TOKENS}}, UPOS)
    arc, labels = model.first_order_scores(encoded)
    scale = 1.0 / temperature if mode == "global" else 1.0
    for b, n in enumerate(LENGTHS):
        # every labeled head selection: word m takes a head h != m in 0..n and a deprel r
        choices = [[(h, r) for h in range(n + 1) if h != m for r in range(3)] for m in range(1, n + 1)]
        heads, deprels = torch.zeros(n, n + 1, dtype=torch.float64), torch.zeros(n, 3, dtype=torch.float64)
        structures = []
        for assignment in itertools.product(*choices):
            log_p = 0.0
            for m, (h, r) in enumerate(assignment, start=1):
                log_p += ((arc[b, m, : n + 1] * scale).log_softmax(-1)[h] + (labels[b, m, h] * scale).log_softmax(-1)[r]).item()
            structures.append((assignment, log_p))
        log_z = brute_force.logsumexp([lp for _, lp in structures])
        for assignment, log_p in structures:
            for m, (h, r) in enumerate(assignment):
                heads[m, h] += math.exp(log_p - log_z)
                deprels[m, r] += math.exp(log_p - log_z)
        if mode == "local":
            heads, deprels = local(heads, temperature), local(deprels, temperature)
        torch.testing.assert_close(targets["teacher_head_probs"][b, :n, : n + 1].double(), heads, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(targets["teacher_deprel_probs"][b, :n].double(), deprels, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["global", "local"])
def test_second_order_teacher_runs_mean_field_on_tempered_scores(mode):
    temperature = 3.0
    model = parser("second_order")
    targets, _, _ = model.teacher_outputs(objective(temperature, mode), {"tokens": {"tokens": TOKENS}}, upos=UPOS)
    encoded, mask = model.encode({"tokens": {"tokens": TOKENS}}, UPOS)
    arc, _ = model.first_order_scores(encoded)
    sibling, grandparent = model.second_order_scores(encoded)
    scale = 1.0 / temperature if mode == "global" else 1.0
    logits = second_order.mfvi_logits(arc * scale, mask, sibling * scale, grandparent * scale, model.iterations)
    for b, n in enumerate(LENGTHS):
        expected = logits[b, 1 : n + 1, : n + 1].clone()
        for m in range(n):
            expected[m, m + 1] = float("-inf")  # no self-loop
        expected = expected.softmax(-1)
        if mode == "local":
            expected = local(expected, temperature)
        torch.testing.assert_close(targets["teacher_head_probs"][b, :n, : n + 1], expected, atol=1e-5, rtol=1e-5)
    one = model.teacher_outputs(objective(1.0, mode), {"tokens": {"tokens": TOKENS}}, upos=UPOS)[0]
    assert not torch.allclose(one["teacher_head_probs"], targets["teacher_head_probs"])


def span_teacher():
    torch.manual_seed(1)
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["w1", "w2"], "tokens")
    vocab.add_tokens_to_namespace(["PER", "LOC"], "span_labels")
    vocab.add_tokens_to_namespace(span_dp.bioes_label_names(["PER", "LOC"]), "labels")
    model = Model.from_params(vocab=vocab, params=Params({
        "type": "structkd_span_ner",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}},
        "encoder": {"type": "lstm", "input_size": 4, "hidden_size": 3, "bidirectional": True},
        "span_representation_dim": 4, "dropout": 0.0,
    }))
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    return model.eval()


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("mode", ["global", "local"])
def test_span_ner_teacher_bioes_marginals_by_enumeration(temperature, mode):
    model = span_teacher()
    tokens = {"tokens": {"tokens": torch.tensor([[2, 3, 2], [3, 2, 0]])}}
    targets, _, _ = model.teacher_outputs(objective(temperature, mode), tokens)
    logits, _ = model.span_logits(tokens)
    potentials = SpanNer.log_odds(logits).double()
    for b, n in enumerate([3, 2]):
        scale = 1.0 / temperature if mode == "global" else 1.0
        _, expected, _ = brute_force.bioes_marginals(potentials[b, :n, :n] * scale, n)
        if mode == "local":
            expected = local(expected, temperature)
        torch.testing.assert_close(targets["teacher_unary"][b, :n].double(), expected, atol=1e-5, rtol=1e-5)


def test_span_ner_teacher_refuses_objectives_that_need_sequences():
    with pytest.raises(ConfigurationError, match=r"a SpanNer teacher gives unary_marginals targets.*asks for potentials.*\(posterior, structural\)"):
        span_teacher().teacher_outputs(KDLoss.from_params(Params({"type": "top_k", "k": 2})),
                                       {"tokens": {"tokens": torch.tensor([[2, 3]])}})


def test_teachers_implement_the_protocol_and_say_what_they_read():
    from allennlp_structkd.kd.protocol import KDTeacher

    pos_parser, spans = parser("biaffine"), span_teacher()
    assert isinstance(pos_parser, KDTeacher) and isinstance(spans, KDTeacher)
    assert pos_parser.reads_pos is True and spans.reads_pos is False  # the parser embeds PoS; the span model words only
    assert pos_parser.label_namespace == "head_tags" and pos_parser.labels == ["nsubj", "obj", "root"]
    # predicting needs PoS where the model reads them, and for the sequence-labeling parser, whose labels are
    # heads relative to them although it reads words only
    assert pos_parser.needs_pos_to_predict is True and spans.needs_pos_to_predict is False
    from allennlp_structkd.models.seq_label_parser import SequenceLabelingParser

    assert SequenceLabelingParser.needs_pos_to_predict.fget(None) is True
    assert SequenceLabelingParser.reads_pos.fget(None) is False


def test_a_teacher_that_gives_no_targets_cannot_be_made_and_outputs_are_named():
    from allennlp_structkd.kd.protocol import KDTeacher, TeacherOutputs

    class Incomplete(Model, KDTeacher):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(Vocabulary())
    outputs = parser("biaffine").teacher_outputs(objective(1.0, "global", "structural"), {"tokens": {"tokens": TOKENS}},
                                                 upos=UPOS)
    assert isinstance(outputs, TeacherOutputs) and outputs.pseudo_labels is None
    targets, pseudo, mask = outputs  # still unpacks as the tuple it is
    assert targets is outputs.targets and mask.dtype == torch.bool and mask.shape == TOKENS.shape


@pytest.mark.parametrize("kind", ["token", "emission", "top_k"])
def test_a_parser_teacher_refuses_objectives_it_cannot_serve(kind):
    with pytest.raises(ConfigurationError, match=r"a BiaffineParser teacher gives one_best or unary_marginals targets.*asks for potentials: use an objective it can teach \(posterior, structural, top1\)"):
        parser("biaffine").teacher_outputs(objective(1.0, "global", kind), {"tokens": {"tokens": TOKENS}}, upos=UPOS)


def test_one_punctuation_rule_for_both_parsers():
    from allennlp_structkd.models.seq_label_parser import SequenceLabelingParser
    from allennlp_structkd.training.metrics.attachment_scores import PUNCTUATION_TAGS, is_punctuation

    assert is_punctuation("PUNCT") and is_punctuation(",") and not is_punctuation("NOUN")
    model = parser("biaffine")
    pos_vocab = model.vocab.get_token_to_index_vocabulary("pos")
    assert model.punctuation_ids == sorted(i for tag, i in pos_vocab.items() if tag in PUNCTUATION_TAGS)
    import inspect

    assert inspect.signature(SequenceLabelingParser.__init__).parameters["punctuation_tags"].default is PUNCTUATION_TAGS
