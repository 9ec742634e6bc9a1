"""Where a checkout keeps things: the one module that computes them (the package runs from its checkout,
``pip install -e .``, which is how ``make install`` installs it)."""
import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PACKAGE)
CONFIGS = os.path.join(REPO, "training_configs")
# the configs' own small data and tiny random encoder, their defaults (see config_defaults): kept beside the
# configs, so that each config trains as written in a checkout, offline
SAMPLE_DATA = os.path.join(CONFIGS, "sample_data")
