"""
``structkd_evaluator``: AllenNLP's evaluator, printing its final metrics.

``allennlp evaluate`` without ``--output-file`` ends with a progress bar and no metrics: AllenNLP's
evaluator logs them only when it writes them to a file. The project's configs name this evaluator
(``evaluation: {type: 'structkd_evaluator'}``, kept in every archive), which prints them.
"""
import json
import sys

from allennlp.evaluation import Evaluator, SimpleEvaluator


@Evaluator.register("structkd_evaluator")
class ReportingEvaluator(SimpleEvaluator):
    """:class:`SimpleEvaluator` (same settings) that prints the final metrics."""

    def __call__(self, model, data_loader, *args, **kwargs):
        metrics = super().__call__(model, data_loader, *args, **kwargs)
        print("Metrics: " + json.dumps(metrics, indent=2, sort_keys=True), file=sys.stdout, flush=True)
        return metrics
