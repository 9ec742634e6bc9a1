"""A run of a suite: one model, one config, its environment.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


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
