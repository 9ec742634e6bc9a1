"""The base of the project's models: weights loaded from an archive must be finite, and the model knows the
languages it was trained on."""
import os
from typing import List, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.models import Model

from allennlp_structkd.archives import check_finite


class FiniteWeightsModel(Model):
    """
    A model whose weights, once loaded from a serialization folder or archive (``allennlp predict``,
    ``evaluate``, a teacher, the demo, export), are checked: a NaN or infinite parameter is a
    ConfigurationError naming it, never a model that serves every word as ``O``.

    A model so loaded also knows ``training_languages``, the languages of its training data (``xx``: text of no
    given language), read from its config: the predictors refuse another language, as the spaCy component does.
    A model built in code has None (not recorded).
    """

    training_languages: Optional[List[str]] = None

    @classmethod
    def _load(cls, config, serialization_dir, weights_file=None, cuda_device=-1):
        from allennlp_structkd.dataset_readers.common import training_languages

        try:
            languages: Optional[List[str]] = training_languages(config.duplicate().as_dict(quiet=True))
        except (ConfigurationError, AttributeError, TypeError):  # a config of another shape: not recorded, still loads
            languages = None
        model = super()._load(config, serialization_dir, weights_file, cuda_device)
        model.training_languages = languages
        # named by the weights file alone: an archive's serialization folder is a temporary one
        weights = os.path.basename(str(weights_file)) if weights_file else "weights.th"
        check_finite(model.named_parameters(), f"this {cls.__name__} (its {weights})")
        return model
