import json

import pytest
import torch
from allennlp.common import Params
from allennlp.common.testing import ModelTestCase
from allennlp.data import Vocabulary
from allennlp.models import Model

import allennlp_structkd  # noqa: F401
from allennlp_structkd.models.crf_tagger import FORBIDDEN
from allennlp_structkd.structures import linear_chain
from allennlp_structkd.structures.potentials import ChainPotentials
from tests.brute_force import chain_marginals, chain_sequences
from tests.conftest import FIXTURES

DATA = FIXTURES / "data"
TRAIN = json.dumps({"es": str(DATA / "ner_es.conll"), "nl": str(DATA / "ner_nl.conll")})


class TestCrfTagger(ModelTestCase):
    def setup_method(self):
        super().setup_method()
        self.set_up_model(FIXTURES / "configs" / "crf_tagger.jsonnet", TRAIN)

    def test_can_train_save_and_load(self):
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_batch_predictions_are_consistent(self):
        self.ensure_batch_predictions_are_consistent()

    def test_probs_are_the_exact_crf_marginals(self):
        self.model.eval()
        output = self.model.forward(**self.dataset.as_tensor_dict())
        potentials = self.model.potentials(output["logits"], output["mask"])
        unary, _ = linear_chain.marginals(potentials.emissions, potentials.transitions, potentials.mask,
                                          potentials.start, potentials.end)
        torch.testing.assert_close(output["probs"], unary)
        lengths = output["mask"].sum(1)
        sums = output["probs"].sum(-1)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(sums[b, :n], torch.ones(n))

    def test_decoding_gives_the_best_sequence_and_the_marginals_in_the_scores_dtype(self):
        """Decoding runs the serving package's inference on the CPU: the exact best sequence (enumeration) and
        marginals, returned as tensors of the scores' dtype (float16 included) and device."""
        g = torch.Generator().manual_seed(0)
        emissions = torch.randn(3, 4, 3, generator=g, dtype=torch.float64) * 2
        transitions, start, end = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((3, 3), (3,), (3,)))
        transitions[1, 2] = FORBIDDEN
        lengths = [4, 2, 1]
        mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        tags, probs = self.model.decode(ChainPotentials(emissions, mask, transitions, start, end))
        assert tags.dtype == torch.long and probs.dtype == torch.float64
        for b, length in enumerate(lengths):
            scores = chain_sequences(emissions[b, :length], transitions, length, start, end)
            assert tuple(tags[b, :length].tolist()) == max(scores, key=scores.get) and (tags[b, length:] == 0).all()
            torch.testing.assert_close(probs[b, :length], chain_marginals(emissions[b, :length], transitions, length, start,
                                                                          end)[1], atol=1e-10, rtol=0)
        half_tags, half_probs = self.model.decode(ChainPotentials(emissions.half(), mask, transitions.half(), start.half(),
                                                                  end.half()))
        assert half_probs.dtype == torch.float16 and half_tags.shape == tags.shape
        # the scores rounded to float16 (here 4.6e-4 at most), and the marginals rounded back to it
        torch.testing.assert_close(half_probs.double(), probs, atol=2e-3, rtol=0)

    def test_bioes_constraints_are_respected(self):
        self.model.eval()
        output = self.model.forward(**self.dataset.as_tensor_dict())
        readable = self.model.make_output_human_readable(output)
        for tags in readable["tags"]:
            previous = "O"
            for tag in tags + ["O"]:
                if tag[:2] in ("I-", "E-"):
                    assert previous[:2] in ("B-", "I-") and previous[2:] == tag[2:], tags
                if previous[:2] in ("B-", "I-"):
                    assert tag[:2] in ("I-", "E-"), tags
                previous = tag
        assert all(0 <= p <= 1 for row in readable["tag_probs"] for p in row)

    def test_training_steps_skip_the_marginals(self):
        self.model.train()
        output = self.model.forward(**self.dataset.as_tensor_dict())
        assert "probs" not in output and "loss" in output


class TestMaxEntTagger(ModelTestCase):
    def setup_method(self):
        super().setup_method()
        self.set_up_model(FIXTURES / "configs" / "maxent_tagger.jsonnet", TRAIN)

    def test_can_train_save_and_load(self):
        self.ensure_model_can_train_save_and_load(self.param_file)


def test_unknown_label_encoding_is_a_clear_error():
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["O", "B-X"], "labels")
    params = Params({
        "type": "structkd_crf_tagger", "label_encoding": "BILOU2",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 2, "num_embeddings": 3}}},
    })
    with pytest.raises(Exception, match="label_encoding"):
        Model.from_params(vocab=vocab, params=params)
