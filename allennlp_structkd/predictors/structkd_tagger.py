import inspect
import re
from functools import cache
from typing import Any, Dict, List, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import DatasetReader, Instance
from allennlp.models import Model
from allennlp.predictors.predictor import Predictor

from allennlp_structkd.dataset_readers.tag_schemes import entities, is_span_label_set
from allennlp_structkd.kd.protocol import KDTeacher
from allennlp_structkd.models.finite_weights import FiniteWeightsModel

LANG_CODE = re.compile(r"^[a-z]{2,3}$")


@cache
def check_lang(lang: str) -> str:
    """``lang`` if it is a language code spaCy knows (``es``, ``nl``, ``xx`` for several), else a clear error
    (a module name such as ``punctuation`` or ``__init__`` is no language)."""
    import spacy

    known = False
    if isinstance(lang, str) and LANG_CODE.match(lang):
        try:
            spacy.util.get_lang_class(lang)
            known = True
        except (ImportError, AttributeError, KeyError, ValueError):
            pass
    if not known:
        raise ConfigurationError(f"{lang!r:.40} is not a language code spaCy knows: give one such as 'es', 'nl' or 'en', "
                                 "or 'xx' (several languages)")
    return lang


@cache
def _blank(lang: str):
    import spacy

    return spacy.blank(check_lang(lang))


def tokenize(json_dict: JsonDict, tokenizer: str) -> List[str]:
    """``{"tokens": [...]}`` as given, or ``{"sentence": "..."}`` split on whitespace or by ``spacy.blank(lang)``."""
    if not isinstance(json_dict, dict):
        raise ConfigurationError(f"an input must be a JSON object with 'sentence' or 'tokens', got {json_dict!r:.80}")
    lang = json_dict.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise ConfigurationError(f"'lang' must be a language code string, got {lang!r:.80}")
    if lang:
        check_lang(lang)
    if "tokens" in json_dict:
        tokens = json_dict["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ConfigurationError(f"'tokens' must be a list of strings, got {tokens!r:.80}")
        return tokens
    if "sentence" not in json_dict:
        raise ConfigurationError(f"an input needs 'sentence' or 'tokens', got keys {sorted(json_dict)}")
    sentence = json_dict["sentence"]
    if not isinstance(sentence, str):
        raise ConfigurationError(f"'sentence' must be a string, got {type(sentence).__name__} {sentence!r:.80}")
    if tokenizer == "whitespace":
        return sentence.split()
    return [t.text for t in _blank(json_dict.get("lang") or "xx")(sentence) if not t.is_space]


class _StructKDPredictor(Predictor):
    """
    Shared input handling: ``{"sentence": ..., "lang": ...}`` or ``{"tokens": [...]}``; no downloads.

    # Parameters

    model : `Model`, required
        The archive's model.
    dataset_reader : `DatasetReader`, required
        The archive's (validation) reader, which turns words into an instance.
    tokenizer : `str`, optional (default = `"spacy"`)
        How a ``sentence`` string is split into words: ``"spacy"`` (a blank tokenizer of the ``lang``
        given, no model download) or ``"whitespace"``.
    """

    def __init__(self, model: Model, dataset_reader: DatasetReader, tokenizer: str = "spacy") -> None:
        super().__init__(model, dataset_reader)
        if tokenizer not in ("spacy", "whitespace"):
            raise ConfigurationError(f"tokenizer must be 'spacy' or 'whitespace', got {tokenizer!r}")
        self.tokenizer = tokenizer
        self._accepts = set(inspect.signature(dataset_reader.text_to_instance).parameters)
        # the languages the model was trained on, where its archive says (None: any)
        self.languages = model.training_languages if isinstance(model, FiniteWeightsModel) else None

    def check_served(self, lang: Optional[str]) -> None:
        """A ``lang`` the model was not trained on is an error (the spaCy component's rule); ``xx`` serves any."""
        if not isinstance(lang, str) or not lang or self.languages is None:
            return  # a lang that is no string is named by the tokenizer's check
        if check_lang(lang) not in self.languages and "xx" not in self.languages:
            raise ConfigurationError(f"this model was trained on {', '.join(self.languages)} text, not {lang!r}: give "
                                     "one of those languages as 'lang' (or leave it out)")

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        self.check_served(json_dict.get("lang"))
        words = tokenize(json_dict, self.tokenizer)
        kwargs: Dict[str, Any] = {}
        if "lang" in self._accepts and json_dict.get("lang"):
            kwargs["lang"] = json_dict["lang"]
        if "upos" in self._accepts and json_dict.get("upos") is not None:
            kwargs["upos"] = json_dict["upos"]
        upos = kwargs.get("upos")
        if upos is not None and (not isinstance(upos, list) or not all(isinstance(p, str) for p in upos)):
            raise ConfigurationError(f"'upos' must be a list of PoS strings, one per token, got {upos!r:.80}")
        if "upos" in kwargs and len(kwargs["upos"]) != len(words):
            raise ConfigurationError(f"{len(kwargs['upos'])} PoS tags for {len(words)} tokens")
        return self._dataset_reader.text_to_instance(words, **kwargs)

    def instance(self, json_dict: JsonDict) -> Instance:
        """The model's input for ``{"sentence": ...}`` or ``{"tokens": [...]}`` (with ``lang``, ``upos``): the public path."""
        return self._json_to_instance(json_dict)

    def predict(self, sentence: Optional[str] = None, lang: Optional[str] = None, tokens: Optional[List[str]] = None) -> JsonDict:
        inputs: JsonDict = {"lang": lang}
        if tokens is not None:
            inputs["tokens"] = tokens
        else:
            inputs["sentence"] = sentence
        return self.predict_json(inputs)

    EMPTY: JsonDict = {"words": [], "tags": [], "tag_probs": [], "spans": []}

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        self.check_served(inputs.get("lang"))
        words = tokenize(inputs, self.tokenizer)
        if not words:  # nothing to tag: an empty result rather than an empty batch
            return dict(self.EMPTY)
        return super().predict_json(inputs)

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[JsonDict]:
        """As :meth:`predict_json` for each input, in order: sentences without words get the empty result (a
        batch of nothing but empty sentences is not a model call, and does not stop ``allennlp predict``)."""
        filled = [k for k, item in enumerate(inputs) if tokenize(item, self.tokenizer)]
        results: List[JsonDict] = [dict(self.EMPTY) for _ in inputs]
        if filled:
            for k, result in zip(filled, super().predict_batch_json([inputs[k] for k in filled])):
                results[k] = result
        return results


@Predictor.register("structkd_tagger")
class StructKDTaggerPredictor(_StructKDPredictor):
    """
    For the project's taggers (``structkd_crf_tagger``, ``structkd_maxent_tagger``,
    ``structkd_span_ner``): ``tags``, ``tag_probs`` (the exact CRF marginal of each predicted label),
    ``probs`` (every label's), and, for span encodings, ``spans``: ``{start, end (inclusive), label,
    score}``, ``score`` being the mean confidence of the span's tokens.
    """

    def predict_instance(self, instance: Instance) -> JsonDict:
        output = super().predict_instance(instance)
        tags = output.get("tags", [])
        confidences = output.get("tag_probs", [1.0] * len(tags))
        spans = []
        if is_span_label_set(self._model.labels if isinstance(self._model, KDTeacher) else tags):
            for label, start, end in entities(tags):
                scores = confidences[start : end + 1]
                spans.append({"start": start, "end": end, "label": label, "score": sum(scores) / len(scores)})
        output["spans"] = spans
        return output


@Predictor.register("structkd_parser")
class StructKDParserPredictor(_StructKDPredictor):
    """
    For the project's parsers: ``predicted_heads`` (0 = root), ``predicted_dependencies`` and, for
    graph parsers, ``head_confidences``. Parsers that embed PoS need ``"upos"`` in the input.
    """

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        needs_pos = isinstance(self._model, KDTeacher) and self._model.needs_pos_to_predict
        if needs_pos and json_dict.get("upos") is None:
            raise ConfigurationError("this parser needs the sentence's PoS tags: give 'upos' (one per token)")
        return super()._json_to_instance(json_dict)
