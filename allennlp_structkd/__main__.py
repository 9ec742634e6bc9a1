"""``python -m allennlp_structkd``: AllenNLP's command line with this package's components registered."""
import sys

from allennlp.commands import main

if __name__ == "__main__":
    if "--include-package" not in sys.argv:
        sys.argv += ["--include-package", "allennlp_structkd"]
    main(prog="python -m allennlp_structkd")
