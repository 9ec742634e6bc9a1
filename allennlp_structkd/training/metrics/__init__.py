from allennlp_structkd.training.metrics.span_f1 import SpanF1
