"""
``structkd_gradient_descent``: AllenNLP's gradient-descent trainer, with its settings checked.

AllenNLP's ``GradientDescentTrainer`` takes ``**kwargs`` and drops what it does not know, so a typo
(``trainer.num_epoch``) trains the default number of epochs and exits 0. This trainer is the same
trainer; an unknown setting is an error naming the key and the settings there are.

It also checks, before the first step, that a KD student's reader and model distil the same
objective: the reader computes the teacher targets of its ``objective``, the model's ``kd_loss``
reads them, and configs give both the one ``objective``; an override of one of them alone would
otherwise train on targets computed for another loss.
"""
import inspect

from allennlp.common.checks import ConfigurationError
from allennlp.training import GradientDescentTrainer, Trainer

from allennlp_structkd.kd.protocol import KDStudent
from allennlp_structkd.settings import reject_unknown_arguments


@Trainer.register("structkd_gradient_descent", constructor="from_partial_objects")
class CheckedGradientDescentTrainer(GradientDescentTrainer):
    """AllenNLP's ``gradient_descent`` trainer (same settings, same behaviour), rejecting unknown settings."""

    @classmethod
    def from_partial_objects(cls, model, serialization_dir, data_loader, **kwargs) -> Trainer:  # type: ignore[override]
        # AllenNLP's own method swallows unknown keys in its **kwargs: here they are an error
        reject_unknown_arguments("the trainer", GradientDescentTrainer.from_partial_objects, kwargs)
        check_objectives_agree(getattr(data_loader, "reader", None), model)
        return super().from_partial_objects(model, serialization_dir, data_loader, **kwargs)


def check_objectives_agree(reader, model) -> None:
    """A :class:`ConfigurationError` when a teacher-annotating reader's objective is not the model's ``kd_loss``."""
    from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader

    if not isinstance(reader, TeacherAnnotatingReader):
        return
    loss = model.kd_loss if isinstance(model, KDStudent) else None
    if loss is None:
        raise ConfigurationError(f"the reader annotates with the objective {reader.objective.signature()} but the model has "
                                 "no kd_loss: give the model the same objective")
    if not loss.accepts_targets_of(reader.objective):
        raise ConfigurationError(
            f"the reader's objective ({reader.objective.loss_signature()}) and the model's kd_loss ({loss.loss_signature()}) differ: "
            "the model would learn from targets computed for another loss. Give both the same objective (the configs' "
            "`objective`; with -o, override dataset_reader.objective and model.kd_loss together)")


# AllenNLP builds the arguments from the constructor's signature (their types: Lazy[Optimizer], ...):
# it is the parent's, so that every setting is built exactly as for `gradient_descent`
CheckedGradientDescentTrainer.from_partial_objects.__func__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    GradientDescentTrainer.from_partial_objects.__func__)  # type: ignore[attr-defined]
