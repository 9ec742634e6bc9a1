"""
What the project's command lines (``python -m allennlp_structkd.*``, the checkout's tooling
``python -m experiments[.*]``, and ``allennlp ...`` with this plugin) set for their own process, and a
plain library import never does.

Third-party modules warn on import about things this project cannot change (google.api_core's
Python support, fairscale's and torch's deprecations), and AllenNLP warns that the PoS namespace
``pos`` gets padding and unknown entries, which is what a PoS *input* needs. A command's output
should say what the command did: these are silenced there. ``allennlp ...`` imports most of them
before it loads a plugin: set ``PYTHONWARNINGS=ignore::FutureWarning`` for a quiet ``allennlp`` command.
"""
import logging
import os
import sys
import warnings

# the top-level names of the project's ``python -m`` commands
PROJECT_COMMANDS = ("allennlp_structkd", "experiments")


def running_project_command() -> bool:
    """Whether this process is one of the project's command lines: ``python -m allennlp_structkd[.something]``, or
    the experiment tooling beside the library in a checkout, ``python -m experiments[.something]``."""
    argv = list(getattr(sys, "orig_argv", []))
    return any(flag == "-m" and module.split(".")[0] in PROJECT_COMMANDS for flag, module in zip(argv, argv[1:]))


def quiet_third_party_noise() -> None:
    """Silence the import-time warnings of third-party modules, and AllenNLP's advice about the ``pos`` namespace."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"fairscale.*")
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)


def quiet_allennlp_advice() -> None:
    """AllenNLP's one-time advice that ``pos`` is not a namespace ending in 'labels' or 'tags' (meant: padded, with an
    unknown entry, which a PoS input wants), marked as given."""
    from allennlp_structkd.allennlp_private import mark_namespace_warned

    mark_namespace_warned("pos")


def quiet_predict_logs(argv) -> None:
    """``allennlp predict`` prints predictions: AllenNLP's INFO lines (every parameter of the archive's config read
    back, ~130 lines) go unless the user asked for them with ``ALLENNLP_LOG_LEVEL`` or ``ALLENNLP_DEBUG``."""
    if len(argv) > 1 and argv[1] == "predict" and not os.environ.get("ALLENNLP_LOG_LEVEL") \
            and not os.environ.get("ALLENNLP_DEBUG"):
        logging.getLogger().setLevel(logging.WARNING)
