"""
structkd-spacy: students distilled with allennlp-structkd, exported by ``python -m
allennlp_structkd.export``, served in spaCy pipelines with spaCy, numpy and PyTorch or ONNX Runtime. Installing
it registers the ``structkd_tagger`` factory (entry point ``spacy_factories``); importing it changes
nothing else.
"""
__version__ = "0.1.0"
