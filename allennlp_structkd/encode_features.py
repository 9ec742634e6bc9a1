"""
Fill the frozen-encoder feature cache of a config before training, batched, with a progress bar:

    python -m allennlp_structkd.encode_features training_configs/teachers/encoder_crf_tagger_es.jsonnet [-o OVERRIDES]

Every ``structkd_frozen_encoder`` indexer of the config's readers encodes the sentences of its
training, validation and test data; training then reads the features from the cache (an epoch
that meets a sentence the cache lacks computes it then, one sentence at a time).
"""
import argparse
import time
from typing import Dict, List, Optional


def _sentences(reader, path) -> List[List[str]]:
    return [instance["metadata"]["words"] for instance in reader.read(path)]


def encode_config(config: str, overrides: str = "", batch: int = 64, env: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Fill the caches of ``config``'s frozen-encoder indexers; ``env``: the config's variables (over the environment)."""
    from allennlp.common import Params
    from allennlp.data import DatasetReader

    import allennlp_structkd  # noqa: F401  (registers the components)
    from allennlp_structkd.config_defaults import ext_vars
    from allennlp_structkd.data.frozen_encoder_indexer import FrozenEncoderIndexer, precompute

    params = Params.from_file(config, overrides, ext_vars={**ext_vars(), **(env or {})}).as_dict(quiet=True)
    reader_params = params["dataset_reader"]
    if reader_params.get("type") == "structkd_teacher":
        reader_params = reader_params["base_reader"]
    reader = DatasetReader.from_params(Params(reader_params))
    indexers = [i for i in (getattr(reader, "token_indexers", None) or {}).values() if isinstance(i, FrozenEncoderIndexer)]
    if not indexers:
        raise SystemExit(f"{config}: its reader has no structkd_frozen_encoder token indexer")
    sentences: List[List[str]] = []
    for key in ("train_data_path", "validation_data_path", "test_data_path"):
        if params.get(key):
            sentences += _sentences(reader, params[key])
    sentences.sort(key=len)  # batches of similar lengths: little padding
    started = time.time()
    for indexer in indexers:
        precompute(indexer, sentences, batch=batch)
    seconds = time.time() - started
    print(f"{len(sentences)} sentences ({sum(map(len, sentences))} words) encoded or found in the cache in {seconds:.0f} s")
    return {"sentences": len(sentences), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("-o", "--overrides", default="")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    encode_config(args.config, args.overrides, args.batch_size)


if __name__ == "__main__":
    main()
