"""
Train the teachers a student's config names by their training configs: the explicit step before distilling.

    python -m allennlp_structkd.train_teachers CONFIG [DATA_PATH ...] [-o OVERRIDES]

CONFIG's ``dataset_reader`` (and ``validation_dataset_reader``, where it is one) is a ``structkd_teacher`` reader;
each teacher it names for the languages of DATA_PATH (default: the config's training and validation data) by a
training config is trained once with ``allennlp train`` and kept in the reader's cache folder, by the hash of its
config and data, where reading the data then finds it. A teacher already trained, or given as an archive or a
Hugging Face folder, is left as it is. Reading data never trains a teacher; a student config of
``type: 'structkd_teachers_first'`` runs this step itself before its data is read.
"""
import argparse
import time
from typing import List, Optional, Sequence, Tuple


def train_teachers(config: str, data_paths: Optional[Sequence[str]] = None, overrides: str = "") -> List[Tuple[str, str]]:
    """
    Train the teacher configs that ``config``'s teacher readers name for the languages of ``data_paths`` (default: its
    training and validation data); ``(language, what was done)`` for each one trained. A ``ConfigurationError`` where
    the config has no teacher reader, or a teacher fails to train.
    """
    from allennlp.common import Params
    from allennlp.common.checks import ConfigurationError
    from allennlp.data import DatasetReader

    import allennlp_structkd  # noqa: F401  (registrations)
    from allennlp_structkd.config_defaults import ext_vars
    from allennlp_structkd.training.teachers_first import train_teachers_of

    params = Params.from_file(config, overrides, ext_vars=ext_vars())
    readers = [DatasetReader.from_params(params.duplicate().pop(key)) for key in ("dataset_reader", "validation_dataset_reader")
               if key in params and params[key].get("type") == "structkd_teacher"]
    if not readers:
        raise ConfigurationError(f"{config} has no structkd_teacher reader, so no teachers")
    paths = list(data_paths or [params.get("train_data_path"), params.get("validation_data_path")])
    return train_teachers_of(readers, paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("data_paths", nargs="*", help="data whose languages' teachers to train (default: the config's "
                                                      "train_data_path and validation_data_path)")
    parser.add_argument("-o", "--overrides", default="")
    args = parser.parse_args()
    from allennlp.common.checks import ConfigurationError

    started = time.time()
    try:
        done = train_teachers(args.config, args.data_paths, args.overrides)
    except ConfigurationError as error:
        raise SystemExit(f"train_teachers: {error}") from None
    for lang, said in done:
        print(f"the teacher of {lang!r} is {said} done", flush=True)
    print(f"{len(done)} teacher(s) trained ({time.time() - started:.1f} s); the others were trained before, or are "
          "archives or Hugging Face folders")


if __name__ == "__main__":
    main()
