"""The base of the project's models: weights loaded from an archive must be finite."""
import os

from allennlp.models import Model

from allennlp_structkd.archives import check_finite


class FiniteWeightsModel(Model):
    """
    A model whose weights, once loaded from a serialization folder or archive (``allennlp predict``,
    ``evaluate``, a teacher, the demo, export), are checked: a NaN or infinite parameter is a
    ConfigurationError naming it, never a model that serves every word as ``O``.
    """

    @classmethod
    def _load(cls, config, serialization_dir, weights_file=None, cuda_device=-1):
        model = super()._load(config, serialization_dir, weights_file, cuda_device)
        # named by the weights file alone: an archive's serialization folder is a temporary one
        weights = os.path.basename(str(weights_file)) if weights_file else "weights.th"
        check_finite(model.named_parameters(), f"this {cls.__name__} (its {weights})")
        return model
