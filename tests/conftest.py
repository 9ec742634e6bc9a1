import os
import pathlib

import pytest
import torch

# Triton's interpreter is chosen when Triton is first imported (the library imports it through
# AllenNLP's dependencies): on a machine without a GPU the fused kernels' tests run interpreted, on CPU
# tensors; with a GPU they run compiled.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
# the configs' sample data (toy NER, 40 UD sentences, a tiny random BERT): the tests read it too
SAMPLE_DATA = pathlib.Path(__file__).parent.parent / "training_configs" / "sample_data"

# property-based tests draw the same examples on every machine and in every order (a test whose
# outcome depends on chance, processor or order is a defect); HYPOTHESIS_PROFILE=explore draws anew
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
_hypothesis_settings.register_profile("explore", deadline=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ.setdefault("STRUCTKD_TEST_DATA", str(FIXTURES / "data"))
os.environ.setdefault("STRUCTKD_TEST_SAMPLE_DATA", str(SAMPLE_DATA))
# the tests evaluate the project's configs in this process, as the allennlp command line does: they
# get the command line's defaults (importing the library alone sets nothing)
from allennlp_structkd import config_defaults  # noqa: E402

config_defaults.apply()


@pytest.fixture
def fixtures() -> pathlib.Path:
    return FIXTURES


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def teacher_archive(tmp_path_factory) -> str:
    """A tiny CRF teacher, trained once per test session (a few seconds)."""
    from allennlp.commands.train import train_model_from_file

    import allennlp_structkd  # noqa: F401

    directory = tmp_path_factory.mktemp("teacher")
    train_model_from_file(str(FIXTURES / "configs" / "crf_tagger.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")


@pytest.fixture(scope="session")
def maxent_teacher_archive(tmp_path_factory) -> str:
    from allennlp.commands.train import train_model_from_file

    import allennlp_structkd  # noqa: F401

    directory = tmp_path_factory.mktemp("maxent_teacher")
    train_model_from_file(str(FIXTURES / "configs" / "maxent_tagger.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")


@pytest.fixture(scope="session")
def span_teacher_archive(tmp_path_factory) -> str:
    """A tiny NER-as-parsing teacher (Case 4)."""
    from allennlp.commands.train import train_model_from_file

    import allennlp_structkd  # noqa: F401

    directory = tmp_path_factory.mktemp("span_teacher")
    train_model_from_file(str(FIXTURES / "configs" / "span_ner.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")


@pytest.fixture(scope="session")
def parser_archive(tmp_path_factory) -> str:
    """A tiny biaffine parser over ud_en_small (a Case 1b teacher)."""
    from allennlp.commands.train import train_model_from_file

    import allennlp_structkd  # noqa: F401

    os.environ["STRUCTKD_TEST_PARSER"] = "biaffine"
    directory = tmp_path_factory.mktemp("parser")
    train_model_from_file(str(FIXTURES / "configs" / "parser.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")


@pytest.fixture(scope="session")
def seq_label_parser_archive(tmp_path_factory) -> str:
    """A tiny sequence-labeling parser over ud_en_small (it decodes its labels into heads with the PoS tags)."""
    from allennlp.commands.train import train_model_from_file

    import allennlp_structkd  # noqa: F401

    directory = tmp_path_factory.mktemp("seq_label_parser")
    train_model_from_file(str(FIXTURES / "configs" / "seq_label_parser.jsonnet"), str(directory / "run"))
    return str(directory / "run" / "model.tar.gz")
