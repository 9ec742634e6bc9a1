"""benchmarks/teacher_sharpness.py: its statistics of cached teacher targets, checked by hand."""
import importlib.util
import math
import sys

import numpy as np

from allennlp_structkd.kd.cache import TeacherCache, file_sha256
from allennlp_structkd.kd.teacher_distributions import SequenceTeacher
from tests.conftest import FIXTURES

SCRIPT = FIXTURES.parent.parent / "benchmarks" / "teacher_sharpness.py"


def _script():
    spec = importlib.util.spec_from_file_location("teacher_sharpness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sharpness_of_cached_targets(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "teacher.tar.gz"
    archive.write_bytes(b"a teacher archive")
    cache = TeacherCache(str(tmp_path / "cache"), file_sha256(str(archive)))
    one_hot, uniform = np.array([[1.0, 0.0, 0.0, 0.0]]), np.full((1, 4), 0.25)
    cache.put_many([
        ("StructuralKD-v2-T1-local|a", {"teacher_unary": np.concatenate([one_hot, uniform]), "pseudo_tags": np.zeros(2)}),
        ("StructuralKD-v2-T1-local|b", {"teacher_unary": np.array([[0.995, 0.005, 0.0, 0.0]]), "pseudo_tags": np.zeros(1)}),
        ("EmissionKD-v2-T1-local|a", {"teacher_probs": uniform, "pseudo_tags": np.zeros(1)}),
        ("TopKKD-v2-T1-global-k5|a", {"sequences": np.zeros((5, 2))}),  # holds sequences: left out
    ])
    cache.close()
    script = _script()
    table = script.sharpness(cache.path)
    assert sorted(table) == ["EmissionKD-v2-T1-local", "StructuralKD-v2-T1-local"]
    structural = table["StructuralKD-v2-T1-local"]
    assert structural["sentences"] == 2 and structural["tokens"] == 3
    assert math.isclose(structural["mean_max"], (1.0 + 0.25 + 0.995) / 3)
    assert math.isclose(structural["share_over_0.99"], 2 / 3)
    expected_entropy = (0.0 + math.log(4) - (0.995 * math.log(0.995) + 0.005 * math.log(0.005))) / 3
    assert math.isclose(structural["entropy"], expected_entropy, rel_tol=1e-9)
    assert math.isclose(table["EmissionKD-v2-T1-local"]["entropy"], math.log(4))
    # the page names the cache file by the teacher archive it belongs to
    output = tmp_path / "page.md"
    monkeypatch.setattr(sys, "argv", ["teacher_sharpness.py", "--cache", str(tmp_path / "cache"), "--teacher",
                                      f"es={archive}", "--made-by", "a command", "--output", str(output)])
    script.main()
    page = output.read_text()
    assert "| es | StructuralKD-v2-T1-local | 2 | 3 | 0.7483 | 66.7% |" in page and "- `a command`" in page
    assert page in capsys.readouterr().out


def test_structural_kd_entries_stored_as_chain_scores_are_read_as_their_marginals(tmp_path):
    import torch

    from allennlp_structkd.kd.losses import StructuralKD
    from allennlp_structkd.structures.potentials import ChainPotentials

    teacher = ChainPotentials(torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]), torch.ones(1, 2, dtype=torch.bool), torch.zeros(2, 2))
    objective = StructuralKD()
    stored = {name: value[0].numpy() for name, value in objective.storage_targets(SequenceTeacher(teacher)).items()}
    cache = TeacherCache(str(tmp_path / "cache"), "abc")
    signature = objective.signature()
    cache.put_many([(f"{signature}|a", {"teacher_emissions": stored["teacher_emissions"]}),
                    (f"{signature}|shared", {"teacher_transitions": stored["teacher_transitions"]})])
    cache.close()
    table = _script().sharpness(cache.path)
    unary = objective.teacher_targets(SequenceTeacher(teacher))["teacher_unary"][0]
    assert table[signature]["sentences"] == 1
    assert math.isclose(table[signature]["mean_max"], float(unary.max(-1).values.mean()), rel_tol=1e-6)
