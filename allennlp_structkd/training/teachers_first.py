"""
A training run that trains its teachers first: ``type: 'structkd_teachers_first'`` at the top of a student's config.

Reading data never trains a teacher. A student whose ``structkd_teacher`` reader names a teacher by its training
config (``teachers: {es: "training_configs/teachers/crf_tagger_es.jsonnet"}``) either has that teacher trained
beforehand (``python -m allennlp_structkd.train_teachers CONFIG``, or ``annotate``), or says with this type that the
run is to train it: once, cached by the hash of its config and data, before the student's data is read. It is
otherwise AllenNLP's default training run, and a config whose teachers are archives trains the same either way.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from allennlp.commands.train import TrainModel
from allennlp.common import Lazy
from allennlp.data import DataLoader, DatasetReader, Vocabulary
from allennlp.models import Model
from allennlp.nn.parallel import DdpAccelerator
from allennlp.training import Trainer

from allennlp_structkd.dataset_readers.teacher_annotating import TeacherAnnotatingReader

logger = logging.getLogger(__name__)


def train_teachers_of(readers: Sequence[Optional[DatasetReader]], data_paths: List[Any]) -> List[Tuple[str, str]]:
    """Train, once, the teacher configs that the teacher readers among ``readers`` name for the languages of
    ``data_paths`` (the other readers have no teachers); ``(language, what was done)`` for each one trained."""
    paths = [p if p is None or isinstance(p, str) else str(p) for p in data_paths]
    done: List[Tuple[str, str]] = []
    for reader in readers:
        if isinstance(reader, TeacherAnnotatingReader):
            for lang, said in reader.prepare_teachers(paths):
                logger.info("the teacher of %r is %s done", lang, said)
                done.append((lang, said))
    return done


@TrainModel.register("structkd_teachers_first", constructor="from_partial_objects")
class TrainTeachersFirst(TrainModel):
    """AllenNLP's training run, which first trains the teachers its readers name as training configs."""

    @classmethod
    def from_partial_objects(  # the same parameters as AllenNLP's, which from_params reads
        cls,
        serialization_dir: str,
        local_rank: int,
        dataset_reader: DatasetReader,
        train_data_path: Any,
        model: Lazy[Model],
        data_loader: Lazy[DataLoader],
        trainer: Lazy[Trainer],
        vocabulary: Lazy[Vocabulary] = Lazy(Vocabulary),
        datasets_for_vocab_creation: Optional[List[str]] = None,
        validation_dataset_reader: Optional[DatasetReader] = None,
        validation_data_path: Any = None,
        validation_data_loader: Optional[Lazy[DataLoader]] = None,
        test_data_path: Any = None,
        evaluate_on_test: bool = False,
        batch_weight_key: str = "",
        ddp_accelerator: Optional[DdpAccelerator] = None,
    ) -> "TrainModel":
        train_teachers_of([dataset_reader, validation_dataset_reader],
                          [train_data_path, validation_data_path, test_data_path if evaluate_on_test else None])
        arguments: Dict[str, Any] = dict(
            serialization_dir=serialization_dir, local_rank=local_rank, dataset_reader=dataset_reader,
            train_data_path=train_data_path, model=model, data_loader=data_loader, trainer=trainer, vocabulary=vocabulary,
            datasets_for_vocab_creation=datasets_for_vocab_creation, validation_dataset_reader=validation_dataset_reader,
            validation_data_path=validation_data_path, validation_data_loader=validation_data_loader,
            test_data_path=test_data_path, evaluate_on_test=evaluate_on_test, batch_weight_key=batch_weight_key,
            ddp_accelerator=ddp_accelerator)
        return super().from_partial_objects(**arguments)
