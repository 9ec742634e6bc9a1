"""``allennlp evaluate`` of finished runs, cached in their folders (a fine-tuned Hugging Face token classifier, which
has no archive, is scored here by the teacher that students read it through; a spaCy pipeline by spaCy)."""
import json
import os
import tempfile
from typing import Dict, Optional

from allennlp_structkd.commands import run_allennlp
from experiments.span_f1 import span_f1


def cuda_device_of(env: Dict[str, str]) -> str:
    """STRUCTKD_CUDA_DEVICE, or (empty) the first GPU when torch sees one, else the CPU: what training uses too."""
    chosen = env.get("STRUCTKD_CUDA_DEVICE", "")
    if chosen:
        return chosen
    import torch

    return "0" if torch.cuda.is_available() else "-1"


def evaluate_into(directory: str, data: str, target: str, env: Dict[str, str]) -> bool:
    """``allennlp evaluate`` of a run's archive on ``data`` into ``target`` (once; atomically); False if it failed."""
    if os.path.isfile(target):
        return True
    result = run_allennlp("evaluate", os.path.join(directory, "model.tar.gz"), data, "--output-file", target + ".tmp",
                          "--cuda-device", cuda_device_of(env), env=env, log=directory + ".log")
    if result.returncode != 0:
        return False
    os.replace(target + ".tmp", target)
    return True


def token_classifier_of(directory: str) -> str:
    """Where a fine-tuned run (:class:`experiments.suite.FineTune`) keeps its Hugging Face folder."""
    return os.path.join(directory, "model")


def labels_spans(folder: str) -> bool:
    """Whether a Hugging Face token classifier's labels are BIO spans (NER), not plain tags (UPOS)."""
    from allennlp_structkd.kd.huggingface_teacher import read_id2label

    return any(label[:2] in ("B-", "I-") for label in read_id2label(folder))


def score_token_classifier(folder: str, data: str) -> Dict[str, float]:
    """
    A Hugging Face token classifier's scores on ``data`` (CoNLL NER when its labels are BIO spans, else CoNLL-U
    UPOS): the best label of each word as the teacher gives students its distributions (the first piece of each
    word, long sentences in overlapping windows). ``f1-measure-overall`` (span F1) and ``accuracy``.
    """
    from allennlp_structkd.kd.huggingface_teacher import HuggingFaceTeacher
    from experiments.finetune_token_classifier import read_sentences

    spans = labels_spans(folder)
    with tempfile.TemporaryDirectory() as cache:  # nothing is cached: scoring reads each sentence once
        teacher = HuggingFaceTeacher(folder, -1, cache, "BIO" if spans else None)
        labels = teacher.mapping.teacher_labels
        sentences = read_sentences(data, "conll" if spans else "conllu")
        log_probs = teacher.word_log_probs([words for words, _ in sentences])
    predicted = [[labels[i] for i in lp.argmax(-1).tolist()] for lp in log_probs]
    gold = [tags for _, tags in sentences]
    words = max(1, sum(len(tags) for tags in gold))
    scores = {"accuracy": sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)) / words}
    if spans:
        scores["f1-measure-overall"] = span_f1(gold, predicted)
    return scores


def evaluate_run(directory: str, data: str, env: Dict[str, str], metric: str, name: str) -> Optional[float]:
    """``allennlp evaluate`` of a finished run on other data, cached in the run's folder (a cached result is
    read even where the archive is gone, e.g. runs made on another machine and brought back without it)."""
    target = os.path.join(directory, f"evaluation_{name}.json")
    archive = os.path.join(directory, "model.tar.gz")
    classifier = token_classifier_of(directory)
    from experiments.spacy_baseline import pipeline_is_whole, pipeline_of, score_pipeline

    if not os.path.isfile(target) and (os.path.isfile(os.path.join(classifier, "config.json")) or pipeline_is_whole(directory)):
        scores = (score_token_classifier(classifier, data) if os.path.isfile(os.path.join(classifier, "config.json"))
                  else score_pipeline(pipeline_of(directory), data))
        with open(target + ".tmp", "w") as handle:
            json.dump(scores, handle)
        os.replace(target + ".tmp", target)
    if not os.path.isfile(target) and not os.path.isfile(archive):
        return None
    if not evaluate_into(directory, data, target, env):
        return None
    with open(target) as handle:
        return json.load(handle).get(metric)
