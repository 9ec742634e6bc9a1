"""One way to run the ``allennlp`` command line from this project: in a subprocess, with this package included."""
import subprocess
import sys
from typing import Dict, List, Optional


def allennlp_command(verb: str, *arguments: str) -> List[str]:
    """``python -m allennlp VERB ARGUMENTS... --include-package allennlp_structkd`` (the current interpreter)."""
    return [sys.executable, "-m", "allennlp", verb, *arguments, "--include-package", "allennlp_structkd"]


def run_allennlp(verb: str, *arguments: str, env: Optional[Dict[str, str]] = None, log: Optional[str] = None,
                 append: bool = True) -> subprocess.CompletedProcess:
    """Run it; its output goes to ``log`` (appended, or overwritten) or is captured in ``.stdout``."""
    command = allennlp_command(verb, *arguments)
    if log is None:
        return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log, "a" if append else "w") as handle:
        return subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
