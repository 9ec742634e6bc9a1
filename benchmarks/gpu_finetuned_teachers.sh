#!/usr/bin/env bash
# Fine-tuned transformer teachers on a GPU machine with Python 3.12 + CUDA PyTorch and no package index: fine-tune one
# multilingual-e5-small + CRF teacher per language and distil case1a's students from them, every run on
# the GPU (STRUCTKD_CUDA_DEVICE, default 0): suite finetuned_teachers of the experiments runner.
#
# Usage: benchmarks/gpu_finetuned_teachers.sh BUNDLE WORK [SEED ...]   (default seeds: 1 2 3)
#   BUNDLE: made here by benchmarks/gpu_bundle.sh (wheels, data, the packed encoder); WORK: where the
#   installed wheels, the encoder folder and the runs go. Run again with the same WORK to resume.
# Writes docs/results/finetuned_teachers.md in the checkout and WORK/runs.tgz: every run's metrics,
# evaluations, configs and logs, without archives or weights (the teachers' are ~470 MB each), to be
# unpacked into runs/experiments/ of a checkout, where `table finetuned_teachers` re-derives the page;
# and WORK/student_archives.tar, the students' archives (unpacked there too, they let `table` evaluate them).
set -euo pipefail
BUNDLE=$(cd "${1:?usage: gpu_finetuned_teachers.sh BUNDLE WORK [SEED ...]}" && pwd)
WORK=${2:?usage: gpu_finetuned_teachers.sh BUNDLE WORK [SEED ...]}
shift 2
SEEDS=${*:-1 2 3}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
started=$(date +%s)
if [ ! -d "$WORK/site/allennlp" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" "$BUNDLE"/wheels/*.whl
  cp "$BUNDLE/wheels/sitecustomize.py" "$WORK/site/"
fi
export PYTHONPATH="$WORK/site:$PWD" PYTHONUNBUFFERED=1
python3 -c "import torch; print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
if [ ! -f "$WORK/e5/config.json" ]; then
  python3 benchmarks/encoder_pack.py unpack "$BUNDLE/e5.npz" "$WORK/e5" --corpus "$BUNDLE"/data/conll2002/*
fi
echo "set up in $(( $(date +%s) - started )) s"
export STRUCTKD_DATA_DIR="$BUNDLE/data" STRUCTKD_ENCODER="$WORK/e5" STRUCTKD_RUNS_DIR="$WORK/runs"
export STRUCTKD_CUDA_DEVICE=${STRUCTKD_CUDA_DEVICE:-0}
# every student of every seed at once (4 a seed): on the GPU each is bound by its own Python, not the device
status=0
python3 -m experiments run finetuned_teachers --seeds $SEEDS --workers $(( 4 * $(echo $SEEDS | wc -w) )) || status=$?
(cd "$WORK/runs" && tar czf "$WORK/runs.tgz" --exclude='*.tar.gz' --exclude='*.th' --exclude=cache --exclude=vocabulary \
  finetuned_teachers)
# the students' archives (about 7 MB each), for evaluating them elsewhere; split to bring back in pieces
(cd "$WORK/runs" && tar cf "$WORK/student_archives.tar" --exclude='teacher_*' finetuned_teachers/*/seed_*/model.tar.gz)
echo "total wall time: $(( $(date +%s) - started )) s (exit $status)"
exit $status
