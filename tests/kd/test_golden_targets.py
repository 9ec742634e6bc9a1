"""What every KD objective computes as targets, against the stored golden values: a change of definition must raise
KDLoss.TARGETS_VERSION (old teacher caches are then not read) and write the golden file again."""
import json

import pytest
import torch

from allennlp_structkd.kd import KDLoss
from tests.conftest import FIXTURES
from tests.fixtures.golden.make_golden_targets import compute

GOLDEN = FIXTURES / "golden" / "teacher_targets.json"


def test_every_objectives_targets_are_the_stored_ones_unless_the_version_was_raised():
    with open(GOLDEN) as handle:
        stored = json.load(handle)
    today = compute()
    assert set(today["targets"]) == set(stored["targets"]), "objectives or settings changed: write the golden file again"
    changed = []
    for key, expected in stored["targets"].items():
        got = today["targets"][key]
        if set(got) != set(expected) or any(
                not torch.allclose(torch.tensor(got[name], dtype=torch.float64), torch.tensor(expected[name], dtype=torch.float64),
                                   atol=1e-9, rtol=1e-9) for name in expected):
            changed.append(key)
    if stored["targets_version"] == KDLoss.TARGETS_VERSION:
        assert not changed, (f"the targets of {changed} changed with TARGETS_VERSION still {KDLoss.TARGETS_VERSION}: raise it "
                             "(teacher caches of the old targets must not be read) and run tests/fixtures/golden/make_golden_targets.py")
    else:
        pytest.fail(f"TARGETS_VERSION is {KDLoss.TARGETS_VERSION}, the golden file's {stored['targets_version']}: "
                    "run tests/fixtures/golden/make_golden_targets.py")

