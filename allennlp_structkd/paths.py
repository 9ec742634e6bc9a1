"""Where a checkout keeps things: the one module that computes them (the package runs from its checkout,
``pip install -e .``, which is how ``make install`` installs it)."""
import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PACKAGE)
CONFIGS = os.path.join(REPO, "training_configs")
# the project's own small data and tiny encoder, the configs' defaults (see config_defaults)
FIXTURES = os.path.join(REPO, "tests", "fixtures")
