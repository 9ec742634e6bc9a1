"""
``structkd_gradient_descent``: AllenNLP's gradient-descent trainer, with its settings checked.

AllenNLP's ``GradientDescentTrainer`` takes ``**kwargs`` and drops what it does not know, so a typo
(``trainer.num_epoch``) trains the default number of epochs and exits 0. This trainer is the same
trainer; an unknown setting is an error naming the key and the settings there are.
"""
import inspect

from allennlp.training import GradientDescentTrainer, Trainer

from allennlp_structkd.settings import reject_unknown_arguments


@Trainer.register("structkd_gradient_descent", constructor="from_partial_objects")
class CheckedGradientDescentTrainer(GradientDescentTrainer):
    """AllenNLP's ``gradient_descent`` trainer (same settings, same behaviour), rejecting unknown settings."""

    @classmethod
    def from_partial_objects(cls, model, serialization_dir, data_loader, **kwargs) -> Trainer:  # type: ignore[override]
        # AllenNLP's own method swallows unknown keys in its **kwargs: here they are an error
        reject_unknown_arguments("the trainer", GradientDescentTrainer.from_partial_objects, kwargs)
        return super().from_partial_objects(model, serialization_dir, data_loader, **kwargs)


# AllenNLP builds the arguments from the constructor's signature (their types: Lazy[Optimizer], ...):
# it is the parent's, so that every setting is built exactly as for `gradient_descent`
CheckedGradientDescentTrainer.from_partial_objects.__func__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    GradientDescentTrainer.from_partial_objects.__func__)  # type: ignore[attr-defined]
