#!/usr/bin/env bash
# The GPU path end to end: two CRF teachers trained, the teachers' annotation of the
# student's training data, and the Case 1a student (Structural KD) trained and evaluated, all on the
# GPU that STRUCTKD_CUDA_DEVICE names (default 0), on CoNLL-2002 Spanish + Dutch.
#
# Usage: benchmarks/gpu_end_to_end.sh CONLL2002_DIR WORK_DIR [EPOCHS]
#   CONLL2002_DIR holds esp.train, esp.testa, ned.train, ned.testa; WORK_DIR gets the runs.
# Prints each run's final metrics and the wall time of each stage.
set -euo pipefail
DATA=${1:?usage: gpu_end_to_end.sh CONLL2002_DIR WORK_DIR [EPOCHS]}
WORK=${2:?usage: gpu_end_to_end.sh CONLL2002_DIR WORK_DIR [EPOCHS]}
EPOCHS=${3:-2}
export STRUCTKD_CUDA_DEVICE=${STRUCTKD_CUDA_DEVICE:-0}
export TAGGING_TRAIN_ES=$DATA/esp.train TAGGING_DEV_ES=$DATA/esp.testa TAGGING_TRAIN_NL=$DATA/ned.train TAGGING_DEV_NL=$DATA/ned.testa
export TAGGING_TRAIN="{\"es\": \"$DATA/esp.train\", \"nl\": \"$DATA/ned.train\"}"
export TAGGING_DEV="{\"es\": \"$DATA/esp.testa\", \"nl\": \"$DATA/ned.testa\"}"
export STRUCTKD_STRICT=${STRUCTKD_STRICT:-false}  # CoNLL-2002 has a few invalid IOB2 sequences: skipped, counted, logged
export STRUCTKD_EPOCHS=$EPOCHS STRUCTKD_TEACHER_EPOCHS=$EPOCHS STRUCTKD_CACHE=$WORK/cache
mkdir -p "$WORK"
python3 -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', '| STRUCTKD_CUDA_DEVICE=$STRUCTKD_CUDA_DEVICE')"
started=$(date +%s)
# the student's config names the teachers' configs: they are trained first (in subprocesses, on the
# same device), then annotate the training data, then the student trains
status=0
python3 -m allennlp train training_configs/struct_kd_case1a.jsonnet -s "$WORK/student" \
  --include-package allennlp_structkd > "$WORK/train.log" 2>&1 || status=$?
echo "total wall time: $(( $(date +%s) - started )) s (exit $status)"
grep -E -i "cuda_device|teacher|annotat|Epoch [0-9]+/" "$WORK/train.log" | cut -c1-240 | tail -20 || true
if [ "$status" != 0 ]; then tail -40 "$WORK/train.log"; exit "$status"; fi
for metrics in "$WORK"/cache/teachers/*/metrics.json "$WORK"/student/metrics.json; do
  echo "== $metrics"
  python3 - "$metrics" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print({k: v for k, v in m.items() if any(w in k for w in ("duration", "epoch", "best_validation_f1", "gpu"))})
PY
done
grep -h -E "Epoch duration|epoch_duration" "$WORK"/student/out.log 2>/dev/null | tail -3 || true
