"""
spaCy's own NER as a suite's row: what a spaCy user would do instead of distilling. ``spacy init config`` gives the
pipeline and its CPU defaults (``--optimize efficiency``: a hash-embedding CNN tok2vec and the transition-based
NER), ``spacy train`` trains it on the suite's labeled sentences, unchanged but for the seed, and the pipeline
spaCy keeps (``model-best``, chosen on dev) is scored, timed and counted as every other row.

One pipeline for every language of the labeled data (spaCy's multi-language ``xx``), as the students are one
multilingual model each: the same sentences, the same arrangement.
"""
import json
import os
import re
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional, Tuple

from experiments.suite import SpacyTrain

# spaCy's console logger: a row per evaluation, "E  #  LOSS TOK2VEC  LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE"
_LOG_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$")


def pipeline_of(directory: str) -> str:
    """Where a spaCy run keeps the pipeline it is scored by: the one spaCy chose on dev."""
    return os.path.join(directory, "training", "model-best")


def pipeline_is_whole(directory: str) -> bool:
    """Whether a spaCy run's chosen pipeline is there with its config and meta (spaCy writes them last)."""
    folder = pipeline_of(directory)
    return all(os.path.isfile(os.path.join(folder, name)) for name in ("config.cfg", "meta.json"))


def data_paths(data: str) -> List[str]:
    """A data argument's files: one path, or the values of a JSON ``{lang: path}`` map (in its order)."""
    return list(json.loads(data).values()) if data.strip().startswith("{") else [data]


def span_tags(doc) -> List[str]:
    """A doc's entities as BIO tags of its tokens."""
    tags = ["O"] * len(doc)
    for span in doc.ents:
        tags[span.start] = f"B-{span.label_}"
        for index in range(span.start + 1, span.end):
            tags[index] = f"I-{span.label_}"
    return tags


def gold_docs(vocab, sentences: Iterable[Tuple[List[str], List[str]]]):
    """spaCy docs of CoNLL sentences, their entities the spans of the BIO tags as the scorer reads them (an ``I-``
    that continues no span of its type starts one)."""
    from allennlp.data.dataset_readers.dataset_utils.span_utils import bio_tags_to_spans
    from spacy.tokens import Doc, Span

    docs = []
    for words, tags in sentences:
        doc = Doc(vocab, words=words)
        doc.ents = [Span(doc, start, end + 1, label=label) for label, (start, end) in
                    sorted(bio_tags_to_spans(tags), key=lambda span: span[1])]
        docs.append(doc)
    return docs


def write_corpus(vocab, data: str, target: str) -> int:
    """The CoNLL files of ``data`` as one spaCy ``DocBin`` at ``target`` (atomically); returns the sentences."""
    from spacy.tokens import DocBin

    from experiments.finetune_token_classifier import read_sentences

    sentences = [sentence for path in data_paths(data) for sentence in read_sentences(path, "conll")]
    docs = DocBin(docs=gold_docs(vocab, sentences), store_user_data=False)
    docs.to_disk(target + ".tmp")
    os.replace(target + ".tmp", target)
    return len(sentences)


def best_epoch(log: str) -> Optional[int]:
    """The epoch (counted from 0, as spaCy's log counts) of the best score in a ``spacy train`` log, if it has rows."""
    best: Optional[Tuple[float, int]] = None
    with open(log, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _LOG_ROW.match(line)
            if match and (best is None or float(match.group(3)) > best[0]):
                best = (float(match.group(3)), int(match.group(1)))
    return None if best is None else best[1]


def train_run(spec: SpacyTrain, directory: str, env: Dict[str, str]) -> str:
    """
    ``spacy train`` of one run into ``directory`` (its log beside it, as the other runs'), then its dev score as the
    other rows are scored (span F1 of the chosen pipeline over every language's dev file) into ``metrics.json``.
    spaCy cannot resume a training: a folder left by a killed run is set aside (renamed ``training.interrupted-N``,
    never deleted) and the run started again.
    """
    import spacy

    metrics_path = os.path.join(directory, "metrics.json")
    if os.path.isfile(metrics_path) and pipeline_is_whole(directory):
        return directory
    seed = int(env.get("STRUCTKD_SEED", "1"))
    os.makedirs(directory, exist_ok=True)
    output = os.path.join(directory, "training")
    if os.path.exists(output):
        number = 1
        while os.path.exists(f"{output}.interrupted-{number}"):
            number += 1
        os.rename(output, f"{output}.interrupted-{number}")
    log_path = directory + ".log"
    config = os.path.join(directory, "config.cfg")
    vocab = spacy.blank(spec.lang).vocab
    corpora = {part: os.path.join(directory, f"{part}.spacy") for part in ("train", "dev")}
    counts = {part: write_corpus(vocab, getattr(spec, part), path) for part, path in corpora.items()}
    started = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"spaCy {spacy.__version__}: {counts['train']} training and {counts['dev']} dev sentences, seed {seed}\n")
        log.flush()
        for command in (spec.init_command(sys.executable, config),
                        [sys.executable, "-m", "spacy", "train", config, "--output", output, "--gpu-id", "-1",
                         "--paths.train", corpora["train"], "--paths.dev", corpora["dev"], "--system.seed", str(seed), *spec.overrides]):
            result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(command[1:4])} failed (exit {result.returncode}): {directory}; "
                                   f"see {log_path}")
    seconds = int(time.time() - started)
    if not pipeline_is_whole(directory):
        raise RuntimeError(f"spacy train left no pipeline in {pipeline_of(directory)}; see {log_path}")
    scores = score_pipeline(pipeline_of(directory), spec.dev)
    metrics: Dict[str, object] = {f"best_validation_{name}": value for name, value in scores.items()}
    epoch = best_epoch(log_path)
    if epoch is not None:
        metrics["best_epoch"] = epoch
    metrics["training_duration"] = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    with open(metrics_path + ".tmp", "w") as handle:
        json.dump(metrics, handle, indent=2)
    os.replace(metrics_path + ".tmp", metrics_path)
    return directory


def score_pipeline(folder: str, data: str) -> Dict[str, float]:
    """A spaCy pipeline's span F1 (``f1-measure-overall``, read as AllenNLP's span F1 reads BIO tags) on the CoNLL
    files of ``data`` (a path or a JSON ``{lang: path}`` map), on their own tokens."""
    import spacy
    from spacy.tokens import Doc

    from experiments.finetune_token_classifier import read_sentences
    from experiments.span_f1 import span_f1

    nlp = spacy.load(folder)
    sentences = [sentence for path in data_paths(data) for sentence in read_sentences(path, "conll")]
    docs = nlp.pipe((Doc(nlp.vocab, words=words) for words, _ in sentences), batch_size=32)
    predicted = [span_tags(doc) for doc in docs]
    return {"f1-measure-overall": span_f1([tags for _, tags in sentences], predicted)}


def parameters_of(folder: str) -> int:
    """The parameters of a spaCy pipeline: every weight of every component's thinc model (hash embedding tables
    included)."""
    import spacy

    nlp = spacy.load(folder)
    seen = set()
    total = 0
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if model is None:
            continue
        for node in model.walk():
            if node.id in seen:  # a layer shared by two components (the listener's tok2vec) counts once
                continue
            seen.add(node.id)
            total += sum(node.get_param(name).size for name in node.param_names if node.has_param(name))
    return total


def measure(folder: str, sentences: List[List[str]], batch_size: int = 32, repeats: int = 2) -> Dict[str, float]:
    """Sentences per second of a spaCy pipeline on one CPU thread over the given words (``nlp.pipe`` in batches of
    ``batch_size``, best of ``repeats`` after a warm-up, this process's CPU time), its parameters and its size on
    disk: the speed table's row."""
    import spacy
    from spacy.tokens import Doc
    from threadpoolctl import threadpool_limits

    from experiments.demo_job import batched_cpu_seconds

    nlp = spacy.load(folder)

    def tag(batch: List[List[str]]) -> None:
        for _ in nlp.pipe((Doc(nlp.vocab, words=words) for words in batch), batch_size=batch_size):
            pass

    with threadpool_limits(limits=1):
        tag(sentences[:batch_size])  # warm-up
        seconds = batched_cpu_seconds(tag, sentences, batch_size, repeats)
    size = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)
    return {"parameters": parameters_of(folder), "archive_mb": size / 2**20, "sentences_per_second": len(sentences) / seconds}
