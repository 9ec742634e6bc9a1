"""What every benchmark script does with its markdown report: print it, and write it to ``--output`` if given."""
from typing import Optional


def emit(text: str, output: Optional[str]) -> None:
    print(text)
    if output:
        with open(output, "w") as handle:
            handle.write(text)
