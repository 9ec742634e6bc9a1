"""What finished runs hold: their metrics, scores over seeds, wall times.
"""
import json
import logging
import os
import statistics
from typing import Dict, List, Optional

from experiments import layout
from experiments.suite import Run, Suite

logger = logging.getLogger(__name__)


class RunRecordError(ValueError):
    """A run's record (metrics.json, evaluation.json) that cannot be read; the message names the file."""


def read_record(path: str, key: Optional[str] = None) -> Dict:
    """A run's JSON record, checked: an object (with ``key``, when given); else :class:`RunRecordError` naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunRecordError(f"{path} is not valid JSON ({error}): the run's record is damaged; move that run's folder "
                             "aside and run the command again, which trains it anew") from None
    if not isinstance(record, dict):
        raise RunRecordError(f"{path} is not a JSON object of metrics (it holds a {type(record).__name__})")
    if key is not None and key not in record:
        raise RunRecordError(f"{path} has no {key!r} (its keys: {', '.join(sorted(record)[:8])}): the run's record is "
                             "damaged or of another task")
    return record


def wall_seconds(directory: str) -> Optional[float]:
    """A finished run's wall time: recorded by the runner, or (older runs, or a damaged record, said in the log)
    config.json to model.tar.gz."""
    recorded = os.path.join(directory, "wall_seconds.json")
    if os.path.isfile(recorded):
        try:
            return float(read_record(recorded, "wall_seconds")["wall_seconds"])
        except (RunRecordError, TypeError, ValueError) as error:
            logger.warning("%s; the run's wall time is taken from its files' times instead", error)
    first, last = os.path.join(directory, "config.json"), os.path.join(directory, "model.tar.gz")
    if os.path.isfile(first) and os.path.isfile(last):
        return max(0.0, os.path.getmtime(last) - os.path.getmtime(first))
    return None


def parse_duration(text: str) -> float:
    """Seconds of an AllenNLP duration such as ``"0:14:40.079283"`` or ``"1 day, 2:00:00"``."""
    days = 0
    if "day" in text:
        head, text = text.split(",", 1)
        days = int(head.split()[0])
    hours, minutes, secs = text.strip().split(":")
    return days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)


def mean_std(values: List[float]) -> str:
    if not values:
        return ""
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def run_metrics(spec: Suite, suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str) -> List[Dict]:
    """The ``metrics.json`` of each finished seed of a run."""
    found = []
    for seed in spec.seeds_of(run, seeds):
        path = os.path.join(layout.run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if os.path.isfile(path):
            found.append(read_record(path))
    return found


def run_scores(spec: Suite, suite: str, run: Run, seeds: List[int], quick: bool, runs_dir: str):
    """``(scores ×100 per finished seed, parameter count, best epochs)`` of one run of a suite."""
    scores, params, best = [], None, []
    for seed in spec.seeds_of(run, seeds):
        path = os.path.join(layout.run_dir(runs_dir, suite, run, seed, quick), "metrics.json")
        if not os.path.isfile(path):
            continue
        metrics = read_record(path)
        evaluation = os.path.join(os.path.dirname(path), "evaluation.json")
        if run.evaluate_on and os.path.isfile(evaluation):
            scores.append(100 * read_record(evaluation, spec.eval_metric)[spec.eval_metric])
        else:
            scores.append(100 * read_record(path, spec.metric)[spec.metric])
        best.append(metrics.get("best_epoch"))
        params = params or parameter_count(os.path.dirname(path))
    return scores, params, best


def _is_weight(dtype: str) -> bool:
    """A floating-point tensor of a safetensors file (integer ones are buffers such as position ids)."""
    return dtype.upper().startswith(("F", "BF"))


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def parameter_count(directory: str) -> Optional[str]:
    """The parameters of a run's best weights: ``best.th``, or the archive's ``weights.th`` where only the
    archive was kept (runs brought back from another machine)."""
    import tarfile

    import torch

    weights, archive = os.path.join(directory, "best.th"), os.path.join(directory, "model.tar.gz")
    # a fine-tuned Hugging Face token classifier: its weights as save_pretrained wrote them (tensors only are read)
    classifier = os.path.join(directory, "model")
    if os.path.isfile(os.path.join(classifier, "model.safetensors")):
        from safetensors import safe_open

        with safe_open(os.path.join(classifier, "model.safetensors"), framework="pt") as handle:
            slices = [handle.get_slice(name) for name in handle.keys()]
            return f"{sum(_numel(s.get_shape()) for s in slices if _is_weight(s.get_dtype())):,}"
    if os.path.isfile(os.path.join(classifier, "pytorch_model.bin")):
        tensors = torch.load(os.path.join(classifier, "pytorch_model.bin"), map_location="cpu", weights_only=True)
        return f"{sum(v.numel() for v in tensors.values() if v.is_floating_point()):,}"  # not position ids
    from experiments.spacy_baseline import parameters_of, pipeline_is_whole, pipeline_of

    if pipeline_is_whole(directory):  # a spaCy pipeline: its thinc models' weights
        return f"{parameters_of(pipeline_of(directory)):,}"
    if os.path.isfile(weights):
        state = torch.load(weights, map_location="cpu")
    elif os.path.isfile(archive):
        with tarfile.open(archive) as handle:
            member = handle.extractfile("weights.th")
            if member is None:  # an archive without weights: no parameters to count
                return None
            state = torch.load(member, map_location="cpu")
    else:
        return None
    return f"{sum(v.numel() for k, v in state.items() if not k.startswith('_')):,}"
