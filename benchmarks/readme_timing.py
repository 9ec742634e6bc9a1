"""
The README's "Use with AllenNLP" commands, run as written and timed step by step (its "# 1." ... "# 4."
comments), on real data: the figures the README quotes for them. (tests/test_readme.py runs the same
block on fixture data; this is the full-size run, minutes to an hour, so a script and not a test.)

    .venv/bin/python benchmarks/readme_timing.py --data ../shared/data --work /tmp/readme_run

``--data`` replaces the README's ``../shared/data``; ``--work`` is a scratch folder that links the
checkout's venv, Makefile, configs and packages, so the commands run there exactly as in a checkout;
each step's output goes to ``WORK/stepN.log``.
"""
import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steps(readme: str):
    """``(prelude lines, [(title, body lines)])`` of the section's first bash block."""
    start = readme.index("\n## Use with AllenNLP\n")
    end = readme.find("\n## ", start + 1)
    block = re.findall(r"```bash\n(.*?)```", readme[start:end], flags=re.S)[0]
    prelude, found = [], []
    for line in block.splitlines():
        title = re.match(r"# (\d)\. .*", line)
        if title:
            found.append((line, []))
        elif found:
            found[-1][1].append(line)
        else:
            prelude.append(line)
    return prelude, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder laid out like ../shared/data")
    parser.add_argument("--work", required=True, help="a scratch folder (its runs/ must not exist yet)")
    args = parser.parse_args()
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        prelude, found = steps(handle.read())
    os.makedirs(args.work, exist_ok=True)
    if os.path.exists(os.path.join(args.work, "runs")):
        raise SystemExit(f"{args.work}/runs exists: give a fresh --work folder (the README's commands write runs/)")
    for name in (".venv", "Makefile", "training_configs", "allennlp_structkd", "experiments", ".allennlp_plugins", "spacy_component", "setup.py"):
        if not os.path.lexists(os.path.join(args.work, name)):
            os.symlink(os.path.join(REPO, name), os.path.join(args.work, name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGING_", "TEACHER_", "STRUCTKD_"))}
    data = os.path.abspath(args.data)
    total = time.time()
    for number, (title, body) in enumerate(found, 1):
        script = "\n".join(prelude + body).replace("../shared/data", data)
        started = time.time()
        with open(os.path.join(args.work, f"step{number}.log"), "w") as log:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=args.work, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        print(f"{title}: {time.time() - started:.0f} s (exit {result.returncode})", flush=True)
        if result.returncode:
            return result.returncode
    print(f"total: {time.time() - total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
