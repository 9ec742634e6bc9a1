"""Every suite by name, the suites that share another's runs, and the paper's case names inside suites.
"""
from typing import List, Optional, Tuple

from experiments.suites_ner import (
    suite_case1a,
    suite_case4,
    suite_finetuned_teachers,
    suite_headline,
    suite_headline_sgd,
    suite_hf_teacher,
    suite_label_scarce,
    suite_multilingual,
    suite_retention,
    suite_strong_teachers,
    suite_xtremedistil,
    suite_xtremedistil_finetuned_teacher,
)
from experiments.suites_ud import suite_case3, suite_kr2, suite_parsing_ptb, suite_parsing_ud

SUITES = {"case1a": suite_case1a, "multilingual": suite_multilingual, "case3": suite_case3, "case4": suite_case4,
          "parsing_ptb": suite_parsing_ptb, "parsing_ud": suite_parsing_ud, "kr2": suite_kr2,
          "xtremedistil": suite_xtremedistil, "headline": suite_headline, "headline_sgd": suite_headline_sgd,
          "label_scarce": suite_label_scarce, "xtremedistil_finetuned_teacher": suite_xtremedistil_finetuned_teacher,
          "strong_teachers": suite_strong_teachers, "finetuned_teachers": suite_finetuned_teachers,
          "retention": suite_retention, "hf_teacher": suite_hf_teacher}


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
