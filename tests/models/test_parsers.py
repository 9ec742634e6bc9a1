import json

import pytest
import torch
from allennlp.common.testing import ModelTestCase

import allennlp_structkd  # noqa: F401
from allennlp_structkd.kd.losses import StructuralKD
from allennlp_structkd.structures import head_selection, span_dp
from allennlp_structkd.structures.mst import mst_heads
from tests.conftest import FIXTURES, SAMPLE_DATA

UD = SAMPLE_DATA / "ud_en_small.conllu"
TRAIN = json.dumps({"es": str(FIXTURES / "data" / "ner_es.conll"), "nl": str(FIXTURES / "data" / "ner_nl.conll")})


def is_tree(heads, n):
    """heads[k] is the head of word k + 1 (0 = root): every word reaches the root, no cycle."""
    for start in range(1, n + 1):
        seen, node = set(), start
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


@pytest.mark.parametrize("kind", ["biaffine", "second_order"])
class TestGraphParsers(ModelTestCase):
    @pytest.fixture(autouse=True)
    def parser_kind(self, monkeypatch, kind):
        monkeypatch.setenv("STRUCTKD_TEST_PARSER", kind)

    def test_can_train_save_and_load(self, kind):
        self.set_up_model(FIXTURES / "configs" / "parser.jsonnet", UD)
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_mst_decoding_returns_trees(self, kind):
        self.set_up_model(FIXTURES / "configs" / "parser.jsonnet", UD)
        self.model.eval()
        output = self.model.make_output_human_readable(self.model(**self.dataset.as_tensor_dict()))
        for heads, words in zip(output["predicted_heads"], output["words"]):
            assert len(heads) == len(words) and is_tree(heads, len(heads))
            assert sum(h == 0 for h in heads) >= 1
        metrics = self.model.get_metrics()
        assert 0.0 <= metrics["LAS"] <= metrics["UAS"] <= 1.0


@pytest.mark.parametrize("seed", range(20))
def test_mst_heads_is_always_a_tree(seed):
    g = torch.Generator().manual_seed(seed)
    arc = torch.randn(4, 9, 9, generator=g) * 5
    mask = torch.arange(9).unsqueeze(0) < torch.tensor([[9], [5], [2], [7]])
    heads = mst_heads(head_selection.head_log_probs(arc, mask), mask)
    for b, n in enumerate(mask.sum(1).tolist()):
        words = heads[b, 1:n].tolist()
        assert is_tree(words, n - 1), words
        assert (heads[b, n:] == 0).all()


class TestSequenceLabelingParser(ModelTestCase):
    def setup_method(self):
        super().setup_method()
        self.set_up_model(FIXTURES / "configs" / "seq_label_parser.jsonnet", UD)

    def test_can_train_save_and_load(self):
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_gold_labels_decode_to_gold_trees(self):
        """The label space is exact: gold relative-PoS labels give back every gold head and deprel."""
        self.model.eval()
        batch = self.dataset.as_tensor_dict()
        heads, deprels = self.model.decode_trees(batch["tags"], batch["tokens"]["tokens"]["tokens"] > 0, batch["metadata"])
        for predicted, predicted_rels, meta in zip(heads, deprels, batch["metadata"]):
            assert predicted == meta["heads"] and predicted_rels == meta["deprels"]


class TestSpanNer(ModelTestCase):
    def setup_method(self):
        super().setup_method()
        self.set_up_model(FIXTURES / "configs" / "span_ner.jsonnet", TRAIN)

    def test_can_train_save_and_load(self):
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_teacher_outputs_are_bioes_marginals_that_sum_to_one(self):
        self.model.eval()
        tokens = self.dataset.as_tensor_dict()["tokens"]
        with torch.no_grad():
            targets, best, mask = self.model.teacher_outputs(StructuralKD(), tokens)
        unary = targets["teacher_unary"]
        assert unary.shape[-1] == len(self.model.labels) == 1 + 4 * len(self.model.types)
        torch.testing.assert_close(unary.sum(-1)[mask], torch.ones(int(mask.sum())))
        assert self.model.labels == span_dp.bioes_label_names(self.model.types)
