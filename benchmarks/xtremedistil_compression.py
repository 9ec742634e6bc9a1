"""
Compression and speed-up of XtremeDistil students against their transformer teacher, like Table 16
of Mukherjee & Awadallah 2020: for a few (E, H), the student's parameters and its CPU speed at batch
32 and batch 1 (sentences per second, one thread, process CPU time), against the teacher's, measured
in one run on the same sentences. Speed does not depend on the weights, so students of each size are
built from a trained student's config with E and H changed (their F1 is that of the suite's runs);
the trained student is measured as well.

    python benchmarks/xtremedistil_compression.py --teacher T/model.tar.gz --student S/model.tar.gz \\
        --data ../shared/data/conll2002/esp.testa [--sizes 50x200 25x100 100x300] [--sentences 300] \\
        [--output docs/xtremedistil_compression.md]
"""
import argparse
import copy
import datetime
import itertools
import os
import platform
import sys

import torch

torch.set_num_threads(1)

from allennlp.common import Params  # noqa: E402
from allennlp.data import Batch, Instance  # noqa: E402
from allennlp.models import Model  # noqa: E402
from report import emit  # noqa: E402  (benchmarks/report.py)

from allennlp_structkd.archives import load_model_archive as load_archive  # noqa: E402

# the checkout's root, where the experiment tooling (experiments/) is imported from: a script's own folder
# is the one on the path
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import allennlp_structkd  # noqa: E402,F401
from experiments.demo_job import cpu_seconds  # noqa: E402


def cpu_speed(model, instances, batch_size, repeats=2):
    """Sentences per second: best process CPU time of ``repeats`` passes after a warm-up."""
    batches = []
    for start in range(0, len(instances), batch_size):
        batch = Batch([Instance({"tokens": i["tokens"]}) for i in instances[start : start + batch_size]])
        batch.index_instances(model.vocab)
        batches.append(batch.as_tensor_dict())
    return len(instances) / cpu_seconds(model, batches, repeats)


def student_of_size(archive, embedding_dim, hidden_dim):
    """The archived student's model config with E and H changed, freshly initialised."""
    params = copy.deepcopy(archive.config["model"].as_dict())
    params["text_field_embedder"]["token_embedders"]["tokens"]["embedding_dim"] = embedding_dim
    params["encoder"].update(input_size=embedding_dim, hidden_size=hidden_dim)
    if "kd_loss" in params:
        params["kd_loss"]["student_hidden_dim"] = 2 * hidden_dim
    return Model.from_params(vocab=archive.model.vocab, params=Params(params))


def parameters(model):
    return sum(p.numel() for p in model.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", required=True, help="a trained XtremeDistil student (its config gives the architecture)")
    parser.add_argument("--data", required=True, help="CoNLL NER file of held-out sentences")
    parser.add_argument("--sizes", nargs="+", default=["50x200", "25x100", "100x300"], help="ExH")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    teacher, student = load_archive(args.teacher), load_archive(args.student)
    instances = list(itertools.islice(student.validation_dataset_reader.read(args.data), args.sentences))
    teacher_instances = list(itertools.islice(teacher.validation_dataset_reader.read(args.data), args.sentences))
    models = [("teacher (transformer + MaxEnt)", teacher.model, teacher_instances),
              ("trained student", student.model, instances)]
    for size in args.sizes:
        e, h = (int(x) for x in size.split("x"))
        models.append((f"student E={e}, H={h}", student_of_size(student, e, h), instances))
    rows = []
    for name, model, data in models:
        rows.append((name, parameters(model), cpu_speed(model, data, 32), cpu_speed(model, data, 1, repeats=1)))
    _, teacher_params, teacher_32, teacher_1 = rows[0]
    lines = [
        "# XtremeDistil: compression and speed-up against the teacher",
        "",
        f"Produced by `python benchmarks/xtremedistil_compression.py --teacher {args.teacher} --student {args.student}"
        f" --data {args.data} --sizes {' '.join(args.sizes)} --sentences {args.sentences}` on"
        f" {datetime.date.today().isoformat()}, {platform.machine()}, torch {torch.__version__}: one CPU thread, process"
        f" CPU time, the first {len(instances)} sentences; students of other sizes are the trained student's"
        " architecture with E and H changed (speed does not depend on the weights). Parameters include the"
        " embeddings (the teacher's 250k-wordpiece vocabulary, compressed to E dimensions in the students).",
        "",
        "| model | parameters | compression | sentences/s, batch 32 | speed-up | sentences/s, batch 1 | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, count, speed_32, speed_1 in rows:
        lines.append(f"| {name} | {count:,} | {teacher_params / count:.1f}x | {speed_32:.1f} | {speed_32 / teacher_32:.1f}x"
                     f" | {speed_1:.1f} | {speed_1 / teacher_1:.1f}x |")
    text = "\n".join(lines) + "\n"
    emit(text, args.output)


if __name__ == "__main__":
    main()
