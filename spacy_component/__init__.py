"""
The spaCy component ``structkd_tagger``: a distilled AllenNLP tagger or parser inside a spaCy
pipeline. Registered through the ``spacy_factories`` entry point of ``setup.py``, so that after
installing the project, in a fresh interpreter,

    nlp = spacy.blank("xx")
    nlp.add_pipe("structkd_tagger", config={"model": "runs/student/model.tar.gz"})

works without importing anything of ours first.
"""
from spacy_component.component import StructKDTagger, make_structkd_tagger

__all__ = ["StructKDTagger", "make_structkd_tagger"]
