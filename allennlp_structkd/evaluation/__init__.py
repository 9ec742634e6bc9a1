from allennlp_structkd.evaluation.reporting_evaluator import ReportingEvaluator  # noqa: F401
