"""
allennlp-structkd: structural knowledge distillation for AllenNLP.

Importing the package registers every component with AllenNLP's registries, so both
``--include-package allennlp_structkd`` and a ``.allennlp_plugins`` file work.
"""
from allennlp_structkd import command_line as _command_line
from allennlp_structkd import config_defaults as _config_defaults

# a command line of the project, or `allennlp ...` with this plugin, says what it did; a library import
# changes nothing global
_a_command = _command_line.running_project_command() or _config_defaults.running_allennlp_command()
if _a_command:
    _command_line.quiet_third_party_noise()

from allennlp_structkd import (
    data,  # noqa: E402,F401
    dataset_readers,  # noqa: E402,F401
    evaluation,  # noqa: E402,F401
    kd,  # noqa: E402,F401
    models,  # noqa: E402,F401
    structures,  # noqa: E402,F401
    training,  # noqa: E402,F401
)
from allennlp_structkd.version import VERSION as __version__  # noqa: E402

if _config_defaults.running_allennlp_command():  # nowhere else: a library import leaves the environment alone
    import sys as _sys

    _config_defaults.check_overrides(_sys.argv)
    _command_line.quiet_predict_logs(_sys.argv)
    _config_defaults.apply()
    from allennlp_structkd import archives as _archives

    _archives.check_archives_in_this_command()
if _a_command:
    _command_line.quiet_allennlp_advice()
from allennlp_structkd import (
    modules,  # noqa: E402,F401
    predictors,  # noqa: E402,F401
)
