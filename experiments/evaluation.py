"""``allennlp evaluate`` of finished runs, cached in their folders."""
import json
import os
from typing import Dict, Optional

from allennlp_structkd.commands import run_allennlp


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


def evaluate_run(directory: str, data: str, env: Dict[str, str], metric: str, name: str) -> Optional[float]:
    """``allennlp evaluate`` of a finished run on other data, cached in the run's folder (a cached result is
    read even where the archive is gone, e.g. runs made on another machine and brought back without it)."""
    target = os.path.join(directory, f"evaluation_{name}.json")
    archive = os.path.join(directory, "model.tar.gz")
    if not os.path.isfile(target) and not os.path.isfile(archive):
        return None
    if not evaluate_into(directory, data, target, env):
        return None
    with open(target) as handle:
        return json.load(handle).get(metric)
