"""
allennlp-structkd: structural knowledge distillation for AllenNLP.

Importing the package registers every component with AllenNLP's registries, so both
``--include-package allennlp_structkd`` and a ``.allennlp_plugins`` file work.
"""
import warnings as _warnings

# Third-party import-time noise that says nothing about this package.
_warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core.*")
_warnings.filterwarnings("ignore", category=FutureWarning, module=r"fairscale.*")
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from allennlp_structkd.version import VERSION as __version__  # noqa: E402
from allennlp_structkd import structures  # noqa: E402,F401
from allennlp_structkd import data  # noqa: E402,F401
from allennlp_structkd import dataset_readers  # noqa: E402,F401
from allennlp_structkd import kd  # noqa: E402,F401
from allennlp_structkd import models  # noqa: E402,F401
from allennlp_structkd import training  # noqa: E402,F401
from allennlp_structkd import evaluation  # noqa: E402,F401
from allennlp_structkd import config_defaults as _config_defaults  # noqa: E402

if _config_defaults.running_allennlp_command():  # nowhere else: a library import leaves the environment alone
    _config_defaults.apply()
from allennlp_structkd import predictors  # noqa: E402,F401
from allennlp_structkd import modules  # noqa: E402,F401
