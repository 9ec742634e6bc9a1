"""The suites on CoNLL-2002 NER: case1a (and multilingual), case4, xtremedistil, headline (the fair protocol),
label_scarce, headline_sgd, strong_teachers, finetuned_teachers.
"""
import collections
import dataclasses
import functools
import itertools
import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from experiments import layout
from experiments.suite import FineTune, PrepareOptions, Run, RunEnv, SpacyTrain, Suite, TeacherRef


def _encoder(suite: str, where: str = "from `make encoders`") -> str:
    """The encoder folder STRUCTKD_ENCODER names; a suite that needs one stops with a clear message without it."""
    encoder = os.environ.get("STRUCTKD_ENCODER")
    if not encoder or not os.path.isdir(encoder):
        raise SystemExit(f"suite {suite} needs STRUCTKD_ENCODER=<multilingual-e5-small folder, {where}>")
    return encoder


def _conll2002() -> Tuple[Dict[str, str], Dict[str, str]]:
    """CoNLL-2002's training and dev files under the data folder, by language: ``(train, dev)``."""
    data = os.path.join(layout.data_root(), "conll2002")
    return ({"es": os.path.join(data, "esp.train"), "nl": os.path.join(data, "ned.train")},
            {"es": os.path.join(data, "esp.testa"), "nl": os.path.join(data, "ned.testa")})


def suite_case1a(quick: bool) -> Suite:
    """CoNLL-2002 es+nl: per-language teachers; CRF and MaxEnt students (Table 4 of Wang et al. 2021)."""
    train, dev = _conll2002()
    common = {
        # CoNLL-2002's esp.train and esp.testa each have a sentence that starts with I-LOC: the reader
        # repairs it as conlleval reads it, with a count in each run's log; other bad sentences are skipped
        "STRUCTKD_STRICT": "false",
        "STRUCTKD_TASK": "ner", "TAGGING_TRAIN": json.dumps(train), "TAGGING_DEV": json.dumps(dev),
        "TAGGING_TRAIN_ES": train["es"], "TAGGING_DEV_ES": dev["es"], "TAGGING_TRAIN_NL": train["nl"], "TAGGING_DEV_NL": dev["nl"],
        "STRUCTKD_EPOCHS": "2" if quick else "8", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "10",
    }
    teachers: RunEnv = {"TEACHER_ES": TeacherRef("teacher_es"), "TEACHER_NL": TeacherRef("teacher_nl"),
                "MAXENT_TEACHER": TeacherRef("teacher_maxent")}
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
    return Suite(env=common, runs=runs, metric="best_validation_f1-measure-overall", metric_name="dev span F1",
                 per_language=dev,
                 description="CoNLL-2002 Spanish + Dutch NER, one multilingual student; per-language BiLSTM-CRF teachers "
                           "(words + characters, hidden 128) and a multilingual MaxEnt teacher for Token KD. The es and "
                           "nl columns evaluate each archive on that language's dev split alone (a teacher on its own "
                           "language; the multilingual teacher and students on both). One sentence of esp.train and one "
                           "of esp.testa start with I-LOC (invalid IOB2): read as conlleval reads it (an entity; "
                           "before the readers repaired such tags, these runs skipped the two sentences). "
                           "Students: 8 epochs; teachers: 10. The same students distilled from the headline's much "
                           "stronger frozen-e5 teachers are suite strong_teachers (docs/results/strong_teachers.md).")


def suite_multilingual(quick: bool) -> Suite:
    """CoNLL-2002 es+nl, one multilingual CRF student from per-language teachers: the layout of Table 2 of Wang et al. 2020."""
    spec = suite_case1a(quick)
    teachers: RunEnv = {"TEACHER_ES": TeacherRef("teacher_es"), "TEACHER_NL": TeacherRef("teacher_nl")}
    # case1a's runs, without its MaxEnt teacher (which only Token KD uses)
    shared = {r.name: dataclasses.replace(r, env={k: v for k, v in r.env.items() if k != "MAXENT_TEACHER"})
              for r in spec.runs}
    runs = [
        shared["teacher_es"], shared["teacher_nl"], shared["CRF: w/o KD"],
        Run("CRF: Emission", "baseline_emission.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Top-K", "baseline_top_k.jsonnet", teachers, baseline="CRF: w/o KD"),
        shared["CRF: Top-WK KD"], shared["CRF: Pos. KD"],
        Run("CRF: Pos.+Top-WK", "baseline_posterior_top_wk.jsonnet", teachers, baseline="CRF: w/o KD"),
    ]
    return dataclasses.replace(
        spec, runs=runs,
        description="CoNLL-2002 Spanish + Dutch NER, one multilingual BiLSTM-CRF student distilled from a "
                    "Spanish and a Dutch BiLSTM-CRF teacher (Algorithm 1 of Wang et al. 2020), with the "
                    "baselines of their Table 2. Runs shared with suite case1a are case1a's. The same students "
                    "distilled from the headline's much stronger frozen-e5 teachers are suite strong_teachers "
                    "(docs/results/strong_teachers.md).")


def suite_case4(quick: bool) -> Suite:
    """CoNLL-2002 es+nl: a NER-as-parsing teacher -> MaxEnt BIOES student (Case 4)."""
    runs = [
        Run("teacher: NER as parsing", "teachers/span_ner.jsonnet", teacher=True),
        Run("MaxEnt: w/o KD", "baseline_no_kd_maxent.jsonnet"),
        Run("MaxEnt: Struct. KD (Case 4)", "struct_kd_case4.jsonnet", {"SPAN_TEACHER": TeacherRef("teacher: NER as parsing")},
            baseline="MaxEnt: w/o KD"),
    ]
    return dataclasses.replace(
        suite_case1a(quick), runs=runs,
        description="CoNLL-2002 Spanish + Dutch NER: a multilingual NER-as-parsing teacher (biaffine spans over "
                    "words + characters, BiLSTM) and a MaxEnt BIOES student taking the teacher's BIOES marginals.")


def _first_sentences(source: str, count: int, target: str, options: Optional[PrepareOptions] = None) -> str:
    """The first ``count`` sentences (blank-line separated blocks) of a CoNLL file, written once, atomically
    (a suite's prepare step)."""
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


def suite_xtremedistil_finetuned_teacher(quick: bool) -> Suite:
    """CoNLL-2002 es+nl: a weak fine-tuned multilingual-e5-small MaxEnt teacher -> BiLSTM students, XtremeDistil D0-D4.2."""
    encoder = _encoder("xtremedistil_finetuned_teacher")
    sources, dev = _conll2002()
    # fine-tuning a 118M-parameter teacher on all 24k sentences does not fit a 2-core CPU next to the
    # students: the first STRUCTKD_XD_SENTENCES sentences of each language (default 2,000) train
    # everything, and the full dev splits score it
    count = int(os.environ.get("STRUCTKD_XD_SENTENCES", "200" if quick else "2000"))
    folder = os.path.join(layout.runs_root(), "xtremedistil_finetuned_teacher" + ("_quick" if quick else ""), "data")
    train = {lang: os.path.join(folder, f"{os.path.basename(source)}.{count}") for lang, source in sources.items()}
    prepare: List[Callable[[PrepareOptions], Any]] = [functools.partial(_first_sentences, sources[lang], count, train[lang]) for lang in sources]
    common = {
        "STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "TAGGING_TRAIN": json.dumps(train), "TAGGING_DEV": json.dumps(dev),
        "TRANSFORMER_MODEL": encoder, "TEACHER_HIDDEN_DIM": "384", "XTREMEDISTIL_E": "50", "XTREMEDISTIL_H": "200",
        "XTREMEDISTIL_EMBEDDING": "svd", "STRUCTKD_EPOCHS": "2" if quick else "12",
        "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "2",
    }
    teacher: RunEnv = {"TRANSFORMER_TEACHER": TeacherRef("teacher: multilingual-e5-small + MaxEnt")}
    runs = [Run("teacher: multilingual-e5-small + MaxEnt", "teachers/transformer_maxent_tagger.jsonnet", teacher=True),
            Run("D0: student on labels only", "xtremedistil_d0.jsonnet")]
    for name, config in (("D1: labels + logits", "d1"), ("D2: + representations", "d2"),
                         ("D3.1: representations, then labels + logits", "d31"), ("D3.2: D3.1 + gradual unfreezing", "d32"),
                         ("D4.1: representations, logits, labels", "d41"), ("D4.2: D4.1 + gradual unfreezing", "d42")):
        runs.append(Run(name, f"xtremedistil_{config}.jsonnet", teacher, baseline="D0: student on labels only"))
    return Suite(env=common, runs=runs, metric="best_validation_f1-measure-overall", metric_name="dev span F1",
                 per_language=dev, prepare=prepare,
                 command_env="STRUCTKD_ENCODER=<multilingual-e5-small folder> "
                             + (f"STRUCTKD_XD_SENTENCES={count} " if "STRUCTKD_XD_SENTENCES" in os.environ else ""),
                 description=f"XtremeDistil (Mukherjee & Awadallah 2020) on CoNLL-2002 Spanish + Dutch NER, the first {count} "
                           "training sentences of each language. Teacher: multilingual-e5-small fine-tuned with a MaxEnt "
                           "(softmax) layer, a word being the average of its wordpieces. Students: the teacher's wordpiece "
                           "embeddings compressed by SVD to E = 50, a BiLSTM with H = 200, MaxEnt over BIOES labels; "
                           "representation loss (MSE) through a shared GELU projection to the teacher's last layer (384). "
                           "Every student trains 12 epochs: D3 gives 4 to the representation stage and 8 to labels + "
                           "logits, D4 4 to each of its 3 stages; with gradual unfreezing a stage's epochs are spread over "
                           "the 4 layer groups (output layer, projection, BiLSTM, embeddings). Model selection is per "
                           "stage: each stage keeps its best epoch by its own loss on the teacher-annotated dev set and "
                           "the next stage starts from it; the final model is the last stage's best (on the gold loss)."
                           " The teacher is weak (1,000 sentences a language, 2 epochs).")


def _conll_blocks(path: str):
    """``(words, the block's text)`` of each sentence of a CoNLL column file (``-DOCSTART-`` skipped)."""
    from allennlp_structkd.dataset_readers.common import read_blocks, split_columns

    for _, block in read_blocks(path):
        words = [split_columns(text)[0] for _, text in block]
        if words and words[0] != "-DOCSTART-":
            yield tuple(words), "\n".join(text for _, text in block) + "\n\n"


def _write_atomically(target: str, text: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(target + ".tmp", target)


TRANSFER_MAX_WORDS = 512  # the transfer text reader's default max_tokens


@dataclasses.dataclass(frozen=True)
class FairSplit:
    """
    A prepare step: one language's training split cut into the fair protocol's parts, written once,
    atomically. ``labeled``: the first ``labeled`` sentences, with their labels (every model's labeled
    data, teachers included); ``transfer``: the words of the next ``transfer`` sentences (None: every
    remaining sentence), one a line, whose labels no model sees; ``gold``: the labeled part and the transfer sentences with their gold
    labels (the reference row: what the labels of the transfer text would give); ``note``: a line for
    the results page. Transfer sentences that repeat a sentence of the labeled part, of ``held_out``
    (dev) or of the test files are counted; the step stops unless told to drop them. A transfer sentence
    longer than the transfer reader takes (``TRANSFER_MAX_WORDS``) is left out of both parts, and counted.
    """

    source: str
    labeled: int
    transfer: Optional[int]
    held_out: Tuple[str, ...]
    folder: str
    lang: str

    def path(self, part: str) -> str:
        return os.path.join(self.folder, {"labeled": f"{self.lang}.labeled", "transfer": f"{self.lang}.transfer.txt",
                                          "gold": f"{self.lang}.labeled+transfer_gold", "note": f"{self.lang}.note"}[part])

    def __call__(self, options: PrepareOptions) -> None:
        if all(os.path.isfile(self.path(part)) for part in ("labeled", "transfer", "gold", "note")):
            return
        wanted = None if self.transfer is None else self.labeled + self.transfer
        sentences = list(itertools.islice(_conll_blocks(self.source), wanted))
        if len(sentences) < (wanted or self.labeled + 1):
            raise SystemExit(f"{self.source} has {len(sentences)} sentences: fewer than the {self.labeled} labeled + "
                             f"{self.transfer or 'at least one'} transfer sentences the suite asks for")
        labeled, transfer = sentences[: self.labeled], sentences[self.labeled:]
        seen = {words: "the labeled part" for words, _ in labeled}
        for path in (*self.held_out, *options.test_files):
            seen.update({words: path for words, _ in _conll_blocks(path) if words not in seen})
        repeats = [(words, seen[words]) for words, _ in transfer if words in seen]
        if repeats and not options.drop_overlap:
            where = collections.Counter(place for _, place in repeats)
            examples = collections.Counter(" ".join(words) for words, _ in repeats).most_common(3)
            raise SystemExit(
                f"{len(repeats)} of the {len(transfer)} transfer sentences of {self.source} ({self.lang}) repeat a sentence "
                f"of {', '.join(f'{place} ({count})' for place, count in where.items())}, most often "
                f"{', '.join(f'{text!r} x{count}' for text, count in examples)}. Transfer text must be text whose labels no "
                "model saw and that no score is taken on: run again with --drop-overlapping-transfer to drop them")
        # the transfer reader's limit (max_tokens): a longer sentence would be skipped by the KD runs only, so it is
        # left out of the gold reference too, and counted
        too_long = sum(1 for words, _ in transfer if words not in seen and len(words) > TRANSFER_MAX_WORDS)
        kept = [(words, block) for words, block in transfer if words not in seen and len(words) <= TRANSFER_MAX_WORDS]
        _write_atomically(self.path("labeled"), "".join(block for _, block in labeled))
        _write_atomically(self.path("transfer"), "".join(" ".join(words) + "\n" for words, _ in kept))
        _write_atomically(self.path("gold"), "".join(block for _, block in labeled + kept))
        dropped = f", less {len(repeats):,} that repeat a sentence of the labeled part, dev or test" if repeats else ""
        dropped += f", less {too_long:,} longer than {TRANSFER_MAX_WORDS} words" if too_long else ""
        _write_atomically(self.path("note"), f"{self.lang}: {len(labeled):,} labeled sentences (sentences 1-{self.labeled:,} "
                          f"of {os.path.basename(self.source)}), {len(kept):,} transfer sentences (the next "
                          f"{len(transfer):,}{', every remaining sentence' if self.transfer is None else ''}{dropped}).\n")


HEADLINE_LABELED, HEADLINE_TRANSFER = 1000, 3000
SPACY_ROW = "spaCy NER (spacy train, default CPU config)"


def _frozen_e5(encoder: str) -> Dict[str, str]:
    """The frozen-e5 teachers' settings: the encoder, its size and layers, one feature cache for every suite."""
    return {"FROZEN_ENCODER": encoder, "FROZEN_ENCODER_DIM": "384", "FROZEN_ENCODER_LAYERS": "[-4, -3, -2, -1]",
            "FROZEN_ENCODER_CACHE": os.path.join(layout.runs_root(), "encoder_features")}


def _parts(splits: Dict[str, FairSplit], part: str) -> Dict[str, str]:
    """One part of each language's split (``labeled``, ``transfer``, ``gold``), as a ``{lang: path}`` map."""
    return {lang: split.path(part) for lang, split in splits.items()}


def _split_ner_suite(splits: Dict[str, FairSplit], dev: Dict[str, str]) -> Dict[str, Any]:
    """What the suites on split CoNLL-2002 data with frozen-e5 teachers share: span F1 per language, the splits
    written first (their notes on the page), the teachers' encoder features computed before any training."""
    return dict(metric="best_validation_f1-measure-overall", metric_name="dev span F1", per_language=dev, summary=True,
                prepare=list(splits.values()), notes=[split.path("note") for split in splits.values()],
                encode_first=["teachers/encoder_crf_tagger_es.jsonnet", "teachers/encoder_crf_tagger_nl.jsonnet"],
                command_env="STRUCTKD_ENCODER=<multilingual-e5-small folder> ", command_flags="--drop-overlapping-transfer")


def suite_headline(quick: bool) -> Suite:
    """Run this first: the fair protocol. Frozen-e5 teachers and small students on the same labeled sentences,
    transfer text whose labels no model sees, and the gold reference."""
    encoder = _encoder("headline")
    train, dev = _conll2002()
    folder = os.path.join(layout.runs_root(), "headline" + ("_quick" if quick else ""), "data")
    labeled_count, transfer_count = (200, 400) if quick else (HEADLINE_LABELED, HEADLINE_TRANSFER)
    splits = {lang: FairSplit(train[lang], labeled_count, transfer_count, (dev[lang],), folder, lang) for lang in train}
    labeled, transfer = _parts(splits, "labeled"), _parts(splits, "transfer")
    gold = _parts(splits, "gold")
    common = {
        "STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "TAGGING_TRAIN": json.dumps(labeled), "TAGGING_DEV": json.dumps(dev),
        # the teachers learn from the same labeled sentences as the students
        "TAGGING_TRAIN_ES": labeled["es"], "TAGGING_DEV_ES": dev["es"], "TAGGING_TRAIN_NL": labeled["nl"], "TAGGING_DEV_NL": dev["nl"],
        **_frozen_e5(encoder),
        "STRUCTKD_EPOCHS": "2" if quick else "10", "STRUCTKD_TEACHER_EPOCHS": "2" if quick else "10",
    }
    es, nl = "teacher_es: frozen e5 + BiLSTM-CRF", "teacher_nl: frozen e5 + BiLSTM-CRF"
    teachers: RunEnv = {"TEACHER_ES": TeacherRef(es), "TEACHER_NL": TeacherRef(nl)}
    with_transfer = dict(teachers, TAGGING_TRAIN=json.dumps({"labeled": labeled, "unlabeled": transfer}))
    with_gold = {"TAGGING_TRAIN": json.dumps(gold)}
    pieces = {"STUDENT_INPUT": "pieces", "STUDENT_ENCODER": encoder, "STUDENT_PIECE_DIM": "64", "STUDENT_HIDDEN_DIM": "128"}
    runs = [
        Run(es, "teachers/encoder_crf_tagger_es.jsonnet", teacher=True, lang="es"),
        Run(nl, "teachers/encoder_crf_tagger_nl.jsonnet", teacher=True, lang="nl"),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Struct. KD (Case 1a), transfer text", "struct_kd_case1a.jsonnet", with_transfer, baseline="CRF: w/o KD"),
        Run("CRF: w/o KD, gold labels of the transfer text", "baseline_no_kd.jsonnet", with_gold, baseline="CRF: w/o KD"),
        Run("e5-piece CRF: w/o KD", "baseline_no_kd.jsonnet", pieces),
        Run("e5-piece CRF: Struct. KD (Case 1a), transfer text", "struct_kd_case1a.jsonnet", dict(with_transfer, **pieces),
            baseline="e5-piece CRF: w/o KD"),
        Run("e5-piece CRF: w/o KD, gold labels of the transfer text", "baseline_no_kd.jsonnet", dict(with_gold, **pieces),
            baseline="e5-piece CRF: w/o KD"),
        # what a spaCy user would do instead: spaCy's own NER on the same labeled sentences
        Run(SPACY_ROW, "", spacy=SpacyTrain(train=json.dumps(labeled), dev=json.dumps(dev))),
    ]
    return Suite(env=common, runs=runs, **_split_ner_suite(splits, dev), teacher_seeds=True,
                 goals={"share_of_teacher": 95.0, "speedup": 25.0, "size_ratio": 25.0, "kd_gain": 1.0, "wall_minutes": 90.0},
                 description="CoNLL-2002 Spanish + Dutch NER, **the fair protocol**: every model, teachers included, learns "
                           f"from the same labeled sentences (the first {labeled_count:,} of each language's training split); "
                           f"the transfer text is the next {transfer_count:,} sentences, whose labels no model sees; rows whose "
                           "name says \"gold labels of the transfer text\" are the reference: the same student trained on "
                           "the gold labels of the labeled part and the transfer text, the most that distilling those "
                           "sentences could recover. Teachers: one per language, a frozen multilingual-e5-small (its last 4 "
                           "layers, cached once per sentence, mixed by learned weights) with word + character embeddings "
                           "under a BiLSTM-CRF (hidden 128). Students, one multilingual model each: the papers' small "
                           "BiLSTM-CRF (\"CRF\": random 32-d word vectors, characters, BiLSTM 32), and a student that starts "
                           "from its teachers' knowledge (\"e5-piece CRF\": each word the average of its e5 word pieces, their "
                           "vectors e5's input embeddings compressed by SVD to 64 dimensions over the pieces of the text it "
                           "reads, with characters, BiLSTM 128). KD students learn the transfer text from its language's "
                           "teacher (Structural KD, Case 1a, teacher annealing); selection on dev only. One teacher "
                           "per language and seed: a student of seed s learns from the teachers of seed s, and `% of "
                           "teacher` is a row's F1 on a language over the mean of that language's teacher's seeds, ×100. "
                           f"\"{SPACY_ROW}\" is what a spaCy user would do instead of distilling: spaCy's own NER "
                           "(`spacy init config --pipeline ner --optimize efficiency`, its CPU default: a hash-embedding "
                           "CNN and the transition-based NER) trained by `spacy train`, unchanged but for the seed, on "
                           "the same labeled sentences, one pipeline for both languages (spaCy's `xx`) as the students "
                           "are one model, the pipeline spaCy chose on dev scored by the same span F1.")


def suite_hf_teacher(quick: bool) -> Suite:
    """The headline's fair protocol with the teacher users hold: multilingual-e5-small fine-tuned as a Hugging Face
    token classifier on the labeled sentences (one per language), distilled into the e5-piece CRF student."""
    encoder = _encoder("hf_teacher")
    train, dev = _conll2002()
    folder = os.path.join(layout.runs_root(), "hf_teacher" + ("_quick" if quick else ""), "data")
    labeled_count, transfer_count = (200, 400) if quick else (HEADLINE_LABELED, HEADLINE_TRANSFER)
    splits = {lang: FairSplit(train[lang], labeled_count, transfer_count, (dev[lang],), folder, lang) for lang in train}
    labeled, transfer, gold = _parts(splits, "labeled"), _parts(splits, "transfer"), _parts(splits, "gold")
    common = {"STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "TAGGING_TRAIN": json.dumps(labeled),
              "TAGGING_DEV": json.dumps(dev), "STRUCTKD_EPOCHS": "2" if quick else "10"}
    # the encoder at lr 2e-4 and its new classification layer at 1e-2 (e5's outputs are small: at the encoder's rate
    # the head stays near zero for hundreds of steps), its embeddings frozen, which makes an epoch fit 2 cores
    tune = FineTune(encoder, labeled["es"], dev["es"], epochs=1 if quick else 6, lr=2e-4, head_lr=1e-2, batch_size=8,
                    train_layers=12)
    es, nl = "teacher_es: multilingual-e5-small fine-tuned", "teacher_nl: multilingual-e5-small fine-tuned"
    teachers: RunEnv = {"TEACHER_ES": TeacherRef(es), "TEACHER_NL": TeacherRef(nl)}
    with_transfer = dict(teachers, TAGGING_TRAIN=json.dumps({"labeled": labeled, "unlabeled": transfer}))
    pieces = {"STUDENT_INPUT": "pieces", "STUDENT_ENCODER": encoder, "STUDENT_PIECE_DIM": "64", "STUDENT_HIDDEN_DIM": "128"}
    runs = [
        Run(es, "", teacher=True, lang="es", finetune=tune),
        Run(nl, "", teacher=True, lang="nl", finetune=dataclasses.replace(tune, train=labeled["nl"], dev=dev["nl"])),
        Run("e5-piece CRF: w/o KD", "baseline_no_kd.jsonnet", pieces),
        Run("e5-piece CRF: Struct. KD (Case 3), transfer text", "struct_kd_case1a.jsonnet", dict(with_transfer, **pieces),
            baseline="e5-piece CRF: w/o KD"),
        Run("e5-piece CRF: Posterior KD, transfer text", "baseline_posterior.jsonnet", dict(with_transfer, **pieces),
            baseline="e5-piece CRF: w/o KD"),
        Run("e5-piece CRF: w/o KD, gold labels of the transfer text", "baseline_no_kd.jsonnet",
            dict(pieces, TAGGING_TRAIN=json.dumps(gold)), baseline="e5-piece CRF: w/o KD"),
    ]
    shared = dict(_split_ner_suite(splits, dev), encode_first=[])
    return Suite(env=common, runs=runs, **shared, teacher_seeds=True,
                 goals={"share_of_teacher": 95.0, "speedup": 25.0, "size_ratio": 25.0, "kd_gain": 1.0,
                        "teacher_f1_es": 75.01, "teacher_f1_nl": 70.25},  # the headline's frozen-e5 teachers (mean of 3 seeds)
                 description="CoNLL-2002 Spanish + Dutch NER on the headline's fair protocol (the same labeled sentences, "
                           f"the first {labeled_count:,} of each language's training split, and the same transfer text, "
                           f"the next {transfer_count:,}, whose labels no model sees), with the teacher a user holds "
                           "today: a Hugging Face token classifier. One teacher per language, as on the headline page "
                           "(each language's student targets come from its own language's teacher): "
                           "multilingual-e5-small with a token-classification head, fine-tuned on that language's "
                           "labeled sentences by experiments/finetune_token_classifier.py (every layer trained, the "
                           f"piece embeddings frozen; {tune.epochs} epochs, AdamW at lr 2e-4 and 1e-2 for the new "
                           "classification layer, batch 8, sentences cut to 128 pieces for training only, the epoch of "
                           "the best dev F1 kept), one teacher per seed. The headline's frozen-e5 + BiLSTM-CRF teachers, "
                           "on the same labeled sentences, scored 75.01 ± 0.83 es / 70.25 ± 0.81 nl dev F1 (seeds 1-3). The teacher is "
                           "a MaxEnt teacher (one distribution a word, "
                           "from its first piece), so the CRF student learns from it by Structural KD Case 3 (pair "
                           "targets the product of the teacher's word distributions, none on a transition the student's tag scheme forbids) "
                           "or Posterior KD. The student is the headline's e5-piece CRF (e5's piece embeddings "
                           "compressed by SVD to 64 dimensions, characters, BiLSTM 128), one multilingual model. "
                           "Each student of seed s learns from the teachers of seed s; `% of teacher`: a row's F1 on a "
                           "language over the mean of that language's teacher's seeds, ×100.")


RETENTION_TRANSFER = (1000, 3000, None)  # transfer sentences a language; None: every remaining training sentence


def suite_retention(quick: bool) -> Suite:
    """The headline's best student against the amount of transfer text: what share of its teachers it keeps with
    about 1k, 3k and every remaining training sentence of each language, each point with its gold reference."""
    headline = suite_headline(quick)
    encoder = headline.env["FROZEN_ENCODER"]
    train, dev = _conll2002()
    labeled_count = 200 if quick else HEADLINE_LABELED
    sizes = (100, 400) if quick else RETENTION_TRANSFER
    root = os.path.join(layout.runs_root(), "retention" + ("_quick" if quick else ""))
    teachers = [r for r in headline.runs if r.teacher]
    refs: RunEnv = {"TEACHER_ES": TeacherRef(teachers[0].name), "TEACHER_NL": TeacherRef(teachers[1].name)}
    pieces = {"STUDENT_INPUT": "pieces", "STUDENT_ENCODER": encoder, "STUDENT_PIECE_DIM": "64", "STUDENT_HIDDEN_DIM": "128"}
    student_runs, splits_of_size, transfer_of = [], [], {}
    # the largest transfer sets first: the longest runs start first, so two workers finish together
    for size in sorted(sizes, key=lambda n: -(n or 10**9)):
        tag = "all" if size is None else str(size)
        splits = {lang: FairSplit(train[lang], labeled_count, size, (dev[lang],), os.path.join(root, f"data_{tag}"), lang)
                  for lang in train}
        splits_of_size.append(splits)
        labeled, transfer, gold = _parts(splits, "labeled"), _parts(splits, "transfer"), _parts(splits, "gold")
        amount = "all remaining" if size is None else f"{size:,}"
        kd, reference = (f"e5-piece CRF: Struct. KD (Case 1a), {amount} transfer sentences",
                         f"e5-piece CRF: w/o KD, gold labels of {amount} transfer sentences")
        x = float(size or 0)  # the page reads the kept sentences from ``transfer_of``
        student_runs += [
            Run(kd, "struct_kd_case1a.jsonnet",
                dict(refs, TAGGING_TRAIN=json.dumps({"labeled": labeled, "unlabeled": transfer}), **pieces),
                baseline="e5-piece CRF: w/o KD", curve=("Struct. KD", x)),
            Run(reference, "baseline_no_kd.jsonnet", dict({"TAGGING_TRAIN": json.dumps(gold)}, **pieces),
                baseline="e5-piece CRF: w/o KD", curve=("gold labels of the transfer text", x)),
        ]
        transfer_of[kd] = transfer_of[reference] = transfer
    runs = [*teachers, *student_runs, Run("e5-piece CRF: w/o KD", "baseline_no_kd.jsonnet", pieces)]
    # every split's labeled part is the same first sentences; the teachers read the largest split's copy
    env = dict(headline.env, TAGGING_TRAIN=json.dumps(_parts(splits_of_size[0], "labeled")),
               TAGGING_TRAIN_ES=splits_of_size[0]["es"].path("labeled"), TAGGING_TRAIN_NL=splits_of_size[0]["nl"].path("labeled"))
    every_split = [split for splits in splits_of_size for split in splits.values()]
    prepare: List[Callable[[PrepareOptions], Any]] = list(every_split)
    return dataclasses.replace(
        # its students distil from the teachers of the first seed, as its page was made (the headline's later pages
        # train a teacher per seed)
        headline, env=env, runs=runs, summary=False, prepare=prepare, transfer_of=transfer_of, goals={"share_of_teacher": 95.0},
        teacher_seeds=False,
        notes=[split.path("note") for split in every_split],
        description="The retention curve: suite headline's fair protocol (the same first "
                    f"{labeled_count:,} labeled sentences of each language for every model, teachers included; "
                    "transfer text whose labels no model sees, repeats of a labeled, dev or test sentence dropped; the "
                    "same frozen-e5 BiLSTM-CRF teachers and e5-piece CRF student, Structural KD Case 1a with teacher "
                    "annealing), with transfer sets of "
                    + ", ".join("every remaining training sentence" if n is None else f"{n:,} sentences" for n in sizes)
                    + " a language (each set holds the smaller ones: the next sentences of the training split), "
                    "each with its reference row on the same sentences' gold labels. The plot shows `% of teacher` "
                    "(a row's F1 on a language over that language's teacher's) against the transfer sentences kept.")


def suite_xtremedistil(quick: bool) -> Suite:
    """XtremeDistil on the fair protocol: a frozen-e5 BiLSTM-MaxEnt teacher, the headline's transfer text, D0-D4.2."""
    headline = suite_headline(quick)  # its data: the labeled part and the transfer text (written by its prepare steps)
    encoder = headline.env["FROZEN_ENCODER"]
    labeled = json.loads(headline.env["TAGGING_TRAIN"])
    transfer = json.loads(str(next(r for r in headline.runs if "Struct. KD" in r.name).env["TAGGING_TRAIN"]))["unlabeled"]
    env = {name: headline.env[name] for name in ("STRUCTKD_STRICT", "STRUCTKD_TASK", "TAGGING_TRAIN", "TAGGING_DEV",
                                                  "FROZEN_ENCODER", "FROZEN_ENCODER_DIM", "FROZEN_ENCODER_LAYERS",
                                                  "FROZEN_ENCODER_CACHE", "STRUCTKD_TEACHER_EPOCHS")}
    env.update({"XTREMEDISTIL_EMBEDDING": "pieces", "STUDENT_ENCODER": encoder, "XTREMEDISTIL_E": "50", "XTREMEDISTIL_H": "200",
                "TEACHER_HIDDEN_DIM": "256", "STRUCTKD_EPOCHS": "2" if quick else "12"})
    name = "teacher: frozen e5 + BiLSTM-MaxEnt"
    with_transfer: RunEnv = {"TRANSFORMER_TEACHER": TeacherRef(name), "TAGGING_TRAIN": json.dumps({"labeled": labeled, "unlabeled": transfer})}
    gold = next(r for r in headline.runs if "gold labels" in r.name).env["TAGGING_TRAIN"]
    runs = [Run(name, "teachers/encoder_maxent_tagger.jsonnet", teacher=True),
            Run("D0: student on labels only", "xtremedistil_d0.jsonnet")]
    for title, config in (("D1: labels + logits", "d1"), ("D2: + representations", "d2"),
                          ("D4.2: representations, logits, labels; gradual unfreezing", "d42")):
        runs.append(Run(title, f"xtremedistil_{config}.jsonnet", with_transfer, baseline="D0: student on labels only"))
    runs.append(Run("D0: student on labels only, gold labels of the transfer text", "xtremedistil_d0.jsonnet",
                    {"TAGGING_TRAIN": gold}, baseline="D0: student on labels only"))
    # the goals of XtremeDistil's paper (95% of the teacher at 35x fewer parameters) and the headline's others
    goals = {"share_of_teacher": 95.0, "speedup": 25.0, "size_ratio": 35.0, "kd_gain": 1.0}
    return dataclasses.replace(
        headline, env=env, runs=runs, summary=True, goals=goals, notes=headline.notes, teacher_seeds=False,
        encode_first=["teachers/encoder_maxent_tagger.jsonnet"],
        description="XtremeDistil (Mukherjee & Awadallah 2020) on the fair protocol of suite headline (CoNLL-2002 Spanish + "
                    "Dutch NER; the same labeled sentences for every model, transfer text whose labels no model sees). "
                    "Teacher: one multilingual frozen multilingual-e5-small (its last 4 layers, cached) with word + character "
                    "embeddings under a BiLSTM (hidden 128) and a MaxEnt layer, trained on the labeled part; its logits and "
                    "its 256-d BiLSTM states are what the students distil. Students: e5's word pieces, their embeddings "
                    "compressed by SVD to E = 50 over the pieces of the text they read, a BiLSTM with H = 200, MaxEnt over "
                    "BIOES labels; D0 learns the labeled part alone; D1 (labels + logits), D2 (+ representations, MSE through "
                    "a shared GELU projection to 256) and D4.2 (representations, then logits, then labels, each stage's "
                    "epochs spread over the 4 layer groups unfrozen from the top, each stage keeping its best epoch by its "
                    "own loss on the teacher-annotated dev set) also learn the transfer text from the teacher; the row named "
                    "\"gold labels of the transfer text\" is D0 given those sentences' gold labels, the reference. 12 epochs "
                    "each. `% of teacher`: a row's F1 on a language over the teacher's F1 on it, ×100. The earlier setting, with a weak fine-tuned teacher and no transfer text, is suite "
                    "xtremedistil_finetuned_teacher.")


def suite_label_scarce(quick: bool) -> Suite:
    """Frozen-e5 teachers trained on every label -> students given 1,000 labeled sentences a language and the next
    3,000 (whose labels the teachers learned) as transfer text."""
    encoder = _encoder("label_scarce")
    train, dev = _conll2002()
    folder = os.path.join(layout.runs_root(), "label_scarce" + ("_quick" if quick else ""), "data")
    # the transfer sentences' labels are no secret here (the teachers learned them): nothing to drop
    splits = {lang: FairSplit(train[lang], HEADLINE_LABELED, HEADLINE_TRANSFER, (), folder, lang) for lang in train}
    labeled, transfer = _parts(splits, "labeled"), _parts(splits, "transfer")
    common = {
        "STRUCTKD_STRICT": "false", "STRUCTKD_TASK": "ner", "TAGGING_TRAIN": json.dumps(labeled), "TAGGING_DEV": json.dumps(dev),
        "TAGGING_TRAIN_ES": train["es"], "TAGGING_DEV_ES": dev["es"], "TAGGING_TRAIN_NL": train["nl"], "TAGGING_DEV_NL": dev["nl"],
        **_frozen_e5(encoder),
        "STRUCTKD_EPOCHS": "2" if quick else "10", "STRUCTKD_TEACHER_EPOCHS": "1" if quick else "6",
    }
    teachers: RunEnv = {"TEACHER_ES": TeacherRef("teacher_es (frozen e5 + BiLSTM-CRF)"),
                "TEACHER_NL": TeacherRef("teacher_nl (frozen e5 + BiLSTM-CRF)")}
    with_transfer = dict(teachers, TAGGING_TRAIN=json.dumps({"labeled": labeled, "unlabeled": transfer}))
    runs = [
        Run("teacher_es (frozen e5 + BiLSTM-CRF)", "teachers/encoder_crf_tagger_es.jsonnet", teacher=True, lang="es"),
        Run("teacher_nl (frozen e5 + BiLSTM-CRF)", "teachers/encoder_crf_tagger_nl.jsonnet", teacher=True, lang="nl"),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Posterior", "baseline_posterior.jsonnet", with_transfer, baseline="CRF: w/o KD"),
        Run("CRF: Struct. KD (Case 1a)", "struct_kd_case1a.jsonnet", with_transfer, baseline="CRF: w/o KD"),
        Run("CRF: w/o KD, every label (gold labels of the transfer text)", "baseline_no_kd.jsonnet",
            {"TAGGING_TRAIN": json.dumps(_parts(splits, "gold"))},
            baseline="CRF: w/o KD"),
    ]
    return Suite(env=common, runs=runs, **_split_ner_suite(splits, dev),
                 description="CoNLL-2002 Spanish + Dutch NER, **label-scarce students, not the fair protocol** (that is suite "
                           "`headline`): the teachers (one per language, a frozen multilingual-e5-small's last 4 layers, cached, "
                           "mixed by learned weights, with word + character embeddings under a BiLSTM-CRF) learn from the "
                           "whole training split; the papers' small BiLSTM-CRF student (one multilingual model) is given the "
                           f"first {HEADLINE_LABELED:,} training sentences of each language labeled, and the KD students the "
                           f"next {HEADLINE_TRANSFER:,} as transfer text, annotated by its language's teacher, which learned "
                           "those sentences' gold labels. The row \"every label\" trains the same student without KD on the gold "
                           "labels of the labeled part and the transfer text: most of the KD students' gain over w/o KD is what "
                           "those labels give, not distillation.")


def suite_headline_sgd(quick: bool) -> Suite:
    """label_scarce's students trained with the papers' SGD recipe instead of Adam."""
    spec = suite_label_scarce(quick)
    shared = {r.name: r for r in spec.runs}
    sgd = {"STRUCTKD_OPTIMIZER": "sgd"}
    runs = [
        shared["teacher_es (frozen e5 + BiLSTM-CRF)"], shared["teacher_nl (frozen e5 + BiLSTM-CRF)"],
        shared["CRF: w/o KD"], shared["CRF: Struct. KD (Case 1a)"],
        Run("CRF: w/o KD, SGD", "baseline_no_kd.jsonnet", sgd),
        Run("CRF: Struct. KD (Case 1a), SGD", "struct_kd_case1a.jsonnet", dict(shared["CRF: Struct. KD (Case 1a)"].env, **sgd),
            baseline="CRF: w/o KD, SGD"),
    ]
    return dataclasses.replace(
        spec, runs=runs, summary=False,
        description=spec.description + " Here the students are trained twice: with Adam at lr 0.01 (label_scarce's "
                    "runs, shared) and with the papers' SGD recipe (STRUCTKD_OPTIMIZER=sgd: lr 0.1, halved after 3 "
                    "epochs without dev improvement), for the same 10 epochs.")


def suite_strong_teachers(quick: bool) -> Suite:
    """case1a / case2a's students on all the training data, distilled from label_scarce's frozen-e5 teachers."""
    spec = suite_case1a(quick)
    headline = suite_label_scarce(quick)  # its teachers learned every label (run `label_scarce` first); building it writes nothing
    teachers: RunEnv = {"TEACHER_ES": TeacherRef(headline.runs[0].name, suite="label_scarce"),
                "TEACHER_NL": TeacherRef(headline.runs[1].name, suite="label_scarce")}
    # Token KD's multilingual MaxEnt teacher, on the same frozen e5 (and its feature cache)
    maxent_teacher = "teacher_maxent (frozen e5 + BiLSTM-MaxEnt)"
    frozen = {name: headline.env[name] for name in ("FROZEN_ENCODER", "FROZEN_ENCODER_DIM", "FROZEN_ENCODER_LAYERS",
                                                    "FROZEN_ENCODER_CACHE", "STRUCTKD_TEACHER_EPOCHS")}
    runs = [
        Run(maxent_teacher, "teachers/encoder_maxent_tagger.jsonnet", frozen, teacher=True),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Struct. KD (Case 1a), e5 teachers", "struct_kd_case1a.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("MaxEnt: w/o KD", "baseline_no_kd_maxent.jsonnet"),
        Run("MaxEnt: Struct. KD (Case 2a), e5 teachers", "struct_kd_case2a.jsonnet", teachers, baseline="MaxEnt: w/o KD"),
        Run("MaxEnt: Token KD, e5 teacher", "baseline_token_kd.jsonnet", {"MAXENT_TEACHER": TeacherRef(maxent_teacher)},
            baseline="MaxEnt: w/o KD"),
    ] + [  # suite multilingual's methods (Table 2 of Wang et al. 2020) with the same teachers
        Run(f"CRF: {method}, e5 teachers", config, teachers, baseline="CRF: w/o KD")
        for method, config in (("Emission", "baseline_emission.jsonnet"), ("Top-K", "baseline_top_k.jsonnet"),
                               ("Top-WK KD", "baseline_top_wk.jsonnet"), ("Pos. KD", "baseline_posterior.jsonnet"),
                               ("Pos.+Top-WK", "baseline_posterior_top_wk.jsonnet"))]
    return dataclasses.replace(
        spec, runs=runs, command_env=headline.command_env,
        description="Strong teachers for case1a's students: the students of case1a (CRF) and case2a (MaxEnt), trained "
                    "as there on all of CoNLL-2002 es+nl training data (8 epochs), distilled from suite label_scarce's "
                    "much stronger teachers, which learned every training label "
                    "(frozen multilingual-e5-small + BiLSTM-CRF, dev F1 82.46 es / 85.82 nl, against 76.01 / 74.04 for "
                    "case1a's BiLSTM-CRF teachers), and suite multilingual's CRF students (Emission, Top-K, Top-WK, "
                    "Posterior, Posterior + Top-WK) from the same teachers. Token KD's teacher is one multilingual "
                    "frozen-e5 + BiLSTM-MaxEnt, trained here as label_scarce trains its teachers (6 epochs, the same "
                    "feature cache). How sharp each objective's teacher targets are, on these "
                    "training sentences and on dev: docs/teacher_sharpness.md. Needs label_scarce's teachers: run "
                    "`label_scarce` first.")


def suite_finetuned_teachers(quick: bool) -> Suite:
    """A GPU suite: fine-tuned multilingual-e5-small + CRF teachers (one per language) -> case1a's CRF students."""
    encoder = _encoder("finetuned_teachers", "from `make encoders`, or benchmarks/encoder_pack.py's on a GPU machine")
    spec = suite_case1a(quick)
    env = dict(spec.env, TRANSFORMER_MODEL=encoder, STRUCTKD_TEACHER_EPOCHS="1" if quick else "4")
    es, nl = "teacher_es (e5 fine-tuned + CRF)", "teacher_nl (e5 fine-tuned + CRF)"
    teachers: RunEnv = {"TEACHER_ES": TeacherRef(es), "TEACHER_NL": TeacherRef(nl)}
    runs = [
        Run(es, "teachers/transformer_crf_tagger_es.jsonnet", teacher=True, lang="es"),
        Run(nl, "teachers/transformer_crf_tagger_nl.jsonnet", teacher=True, lang="nl"),
        Run("CRF: w/o KD", "baseline_no_kd.jsonnet"),
        Run("CRF: Struct. KD (Case 1a)", "struct_kd_case1a.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Emission", "baseline_emission.jsonnet", teachers, baseline="CRF: w/o KD"),
        Run("CRF: Pos. KD", "baseline_posterior.jsonnet", teachers, baseline="CRF: w/o KD"),
    ]
    return dataclasses.replace(
        spec, env=env, runs=runs, machine="one GPU, shared by the runs that trained at the same time",
        command_env="STRUCTKD_ENCODER=<multilingual-e5-small folder> ",
        description="Transformer teachers fine-tuned on a GPU. One teacher per language: "
                    "multilingual-e5-small with a CRF, every weight fine-tuned (AdamW, lr 5e-5; 1e-3 for the CRF "
                    "and the tag projection; 4 epochs) on that language's whole CoNLL-2002 training split. "
                    "Students: case1a's multilingual BiLSTM-CRF on all of es+nl training data (8 epochs, Adam at "
                    "lr 0.01, λ annealed from 1 by 0.2 an epoch), the same as suite strong_teachers, whose "
                    "teachers are frozen-e5 BiLSTM-CRFs. Made on a GPU machine by benchmarks/gpu_finetuned_teachers.sh; "
                    "how, the timings, and what did not finish there: docs/gpu_finetuned_teachers.md. Teachers' "
                    "archives stayed on that machine: their dev F1 is on their own language's dev split.")
