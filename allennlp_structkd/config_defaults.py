"""
Defaults for the environment variables that ``training_configs/`` read with ``std.extVar``.

AllenNLP hands every environment variable to jsonnet as an external variable, and jsonnet has no
default for a missing one. Importing this package changes nothing in the environment, except in
the ``allennlp`` command line itself (``allennlp ...`` / ``python -m allennlp ...``), whose plugin
import (``--include-package allennlp_structkd`` or ``.allennlp_plugins``) is the only hook before it
evaluates a config: there each variable below that is not set gets its default (:func:`apply`).
Code of this project that evaluates configs itself passes :func:`ext_vars` to ``Params.from_file``
instead. The defaults point at the configs' own small sample data (a checkout's
``training_configs/sample_data``: synthetic NER in two toy languages, 40 UD English sentences and a tiny
random BERT), so every config trains as written; set a variable (or use ``-o``) to train on real data:

    TAGGING_TRAIN='{"es": "/data/conll2002/esp.train", "nl": "/data/conll2002/ned.train"}' \\
        allennlp train training_configs/teachers/crf_tagger.jsonnet -s out --include-package allennlp_structkd
"""
import difflib
import json
import logging
import os
from typing import Dict, List, Mapping, Tuple

from allennlp_structkd.paths import CONFIGS, SAMPLE_DATA

logger = logging.getLogger(__name__)

TINY_ENCODER = os.path.join(SAMPLE_DATA, "tiny_bert")


def _sample(name: str) -> str:
    return os.path.join(SAMPLE_DATA, name)


DEFAULTS = {
    # sequence labeling, NER or UPOS (STRUCTKD_TASK): CoNLL column files or CoNLL-U; a path or a JSON
    # {lang: path} map
    "TAGGING_TRAIN": json.dumps({"es": _sample("toy_ner_es.train"), "nl": _sample("toy_ner_nl.train")}),
    "TAGGING_DEV": json.dumps({"es": _sample("toy_ner_es.dev"), "nl": _sample("toy_ner_nl.dev")}),
    "TAGGING_TRAIN_ES": _sample("toy_ner_es.train"),
    "TAGGING_DEV_ES": _sample("toy_ner_es.dev"),
    "TAGGING_TRAIN_NL": _sample("toy_ner_nl.train"),
    "TAGGING_DEV_NL": _sample("toy_ner_nl.dev"),
    "TAGGING_UNLABELED": json.dumps({"es": _sample("toy_unlabeled_es.txt"), "nl": _sample("toy_unlabeled_nl.txt")}),
    # dependency parsing: "conllu" (UD) or "ptb" (.dp files), and the data
    "PARSE_FORMAT": "conllu",
    "PARSE_TRAIN": _sample("ud_en_small.conllu"),
    "PARSE_DEV": _sample("ud_en_small.conllu"),
    # unlabeled parsing transfer sentences (their words and PoS; heads, if any, are not read)
    "PARSE_UNLABELED": _sample("ud_en_small.conllu"),
    "BIAFFINE_TEACHER": os.path.join(CONFIGS, "teachers", "biaffine_parser.jsonnet"),
    "SECOND_ORDER_TEACHER": os.path.join(CONFIGS, "teachers", "second_order_parser.jsonnet"),
    "SPAN_TEACHER": os.path.join(CONFIGS, "teachers", "span_ner.jsonnet"),
    # UPOS tagging data (CoNLL-U; a path or a JSON {lang: path} map) and KR2's fusion strategy
    "UD_TRAIN": _sample("ud_en_small.conllu"),
    "UD_DEV": _sample("ud_en_small.conllu"),
    "KR2_FUSION": "scalar_mix",
    # XtremeDistil: the transformer teacher, its hidden size, and the student's sizes
    "TRANSFORMER_TEACHER": os.path.join(CONFIGS, "teachers", "transformer_maxent_tagger.jsonnet"),
    "TEACHER_HIDDEN_DIM": "32",
    # frozen-encoder teachers (teachers/encoder_*): a local Hugging Face folder (default: the tiny
    # random BERT of the sample data; multilingual-e5-small for real results), its hidden size, the layers kept
    "FROZEN_ENCODER": TINY_ENCODER,
    "FROZEN_ENCODER_DIM": "32",
    "FROZEN_ENCODER_LAYERS": "[-3, -2, -1]",
    "FROZEN_ENCODER_CACHE": "",
    # the transformer teachers' word pooling ("avg" of a word's wordpieces, or its "first") and the
    # layer whose word states representation KD distils ("" = the last; 0 = embeddings, 1..L, -k)
    "TRANSFORMER_POOLING": "avg",
    "TEACHER_LAYER": "",
    # E must not exceed the teacher's hidden size with compressed embeddings (the sample BERT has 32;
    # the paper's E = 50 against BERT's 768)
    "XTREMEDISTIL_E": "16",
    "XTREMEDISTIL_EMBEDDING": "svd",
    "XTREMEDISTIL_H": "100",
    # the students that read words as a pretrained encoder's word pieces (STUDENT_INPUT=pieces): the
    # encoder folder (its tokenizer, and its input embeddings compressed by SVD) and the compressed size
    "STUDENT_INPUT": "words",
    "STUDENT_ENCODER": TINY_ENCODER,
    "STUDENT_PIECE_DIM": "16",
    "STUDENT_HIDDEN_DIM": "32",
    # teachers: a model archive, or a teacher config that is trained once and cached
    "TEACHER_ES": os.path.join(CONFIGS, "teachers", "crf_tagger_es.jsonnet"),
    "TEACHER_NL": os.path.join(CONFIGS, "teachers", "crf_tagger_nl.jsonnet"),
    "TEACHER": os.path.join(CONFIGS, "teachers", "crf_tagger.jsonnet"),
    "MAXENT_TEACHER": os.path.join(CONFIGS, "teachers", "maxent_tagger.jsonnet"),
    # the encoder of the transformer teachers: a Hugging Face folder (default: the sample data's tiny
    # random BERT, so that those configs run anywhere; use a real one for real results)
    "TRANSFORMER_MODEL": TINY_ENCODER,
    # "ner" (CoNLL column files, BIOES, span F1) or "upos" (CoNLL-U UPOS tagging, accuracy)
    "STRUCTKD_TASK": "ner",
    # "false": readers skip bad sentences with a warning and a count instead of stopping at the first
    "STRUCTKD_STRICT": "true",
    # training length and size knobs, small by default so that configs run in seconds
    "STRUCTKD_EPOCHS": "5",
    "STRUCTKD_TEACHER_EPOCHS": "8",
    "STRUCTKD_SEED": "13",
    # the students' recipe: "adam" (the configs' lr) or "sgd" (lr 0.1 halved on a dev plateau; see common.libsonnet)
    "STRUCTKD_OPTIMIZER": "adam",
    "STRUCTKD_CUDA_DEVICE": "",
    "STRUCTKD_CACHE": "",
}


# Earlier names of the tagging-data variables: they said NER but carry UPOS data too. Still read
# (with a warning) when the new name is not set.
RENAMED = {f"NER_{part}": f"TAGGING_{part}" for part in
           ("TRAIN", "DEV", "UNLABELED", "TRAIN_ES", "DEV_ES", "TRAIN_NL", "DEV_NL")}


def _from_earlier_names(environ: Mapping[str, str]) -> Dict[str, str]:
    values = {}
    for old, new in RENAMED.items():
        if old in environ and new not in environ:
            logger.warning("%s is now called %s: its value is used, but set %s instead", old, new, new)
            values[new] = environ[old]
    return values


# The families of names the configs read, and the names of those families that the tooling beside the library reads
# instead (the experiment runner, the benchmarks, the tests): a name of a family that is neither is a typo.
FAMILIES = ("TAGGING_", "STRUCTKD_", "PARSE_", "UD_", "KR2_", "XTREMEDISTIL_", "STUDENT_", "FROZEN_ENCODER", "TRANSFORMER_",
            "TEACHER_")
TOOLING_NAMES = ("STRUCTKD_DATA_DIR", "STRUCTKD_ENCODER", "STRUCTKD_KRESOURCE", "STRUCTKD_RUNS_DIR", "STRUCTKD_XD_SENTENCES")


def unknown_settings(environ: Mapping[str, str]) -> List[Tuple[str, List[str]]]:
    """``(name, close known names)`` of each variable of the configs' families that no config reads (a typo such as
    ``TAGGING_TRAN_ES`` would otherwise leave the config on its sample data, silently)."""
    found = []
    for name in sorted(environ):
        if not (name.startswith(FAMILIES) or name.endswith("_TEACHER")) or name in DEFAULTS or name in RENAMED:
            continue
        if name in TOOLING_NAMES or name.startswith("STRUCTKD_TEST_"):
            continue
        found.append((name, difflib.get_close_matches(name, list(DEFAULTS), n=3)))
    return found


def warn_unknown_settings(environ: Mapping[str, str]) -> None:
    for name, close in unknown_settings(environ):
        logger.warning("%s is set, but no config reads it%s: the settings are listed in docs/configuration.md "
                       "(allennlp_structkd/config_defaults.py)", name, f" (did you mean {' or '.join(close)}?)" if close else "")


def ext_vars() -> Dict[str, str]:
    """The defaults of the variables the environment does not set: ``Params.from_file(path, ext_vars=ext_vars())``."""
    warn_unknown_settings(os.environ)
    earlier = _from_earlier_names(os.environ)
    return {name: earlier.get(name, value) for name, value in DEFAULTS.items() if name not in os.environ}


def apply() -> None:
    """Set every unset variable to its default, in this process's environment (the command line's path)."""
    warn_unknown_settings(os.environ)
    for name, value in _from_earlier_names(os.environ).items():
        os.environ[name] = value
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_overrides(argv: List[str]) -> None:
    """
    An ``allennlp`` command's ``-o``/``--overrides`` must be a JSON (or Jsonnet) object: anything else is an error
    naming the option and the value, before AllenNLP's own Jsonnet error (which names neither) would be.
    """
    import json

    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("-o", "--overrides")]
    values += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--overrides=")]
    for value in values:
        if not value.strip():
            continue  # AllenNLP's default: no overrides
        import _jsonnet

        try:
            parsed = json.loads(_jsonnet.evaluate_snippet("overrides", value))
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise SystemExit(f"-o/--overrides is not a JSON object: {value!r:.200} ({first}); give one such as "
                             "-o '{\"trainer.num_epochs\": 3}'") from None
        if not isinstance(parsed, dict):
            raise SystemExit(f"-o/--overrides must be a JSON object of settings, got {value!r:.200}; give one such as "
                             "-o '{\"trainer.num_epochs\": 3}'")


def running_allennlp_command() -> bool:
    """Whether this process is the ``allennlp`` command line (the console script or ``python -m allennlp``)."""
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("allennlp.__main__", "allennlp"):
        return True
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == "allennlp"
