"""
Every training config of a checkout trained as written on the project's fixtures (1 epoch, seed 1), its
final metrics written to one JSON file; and two such files compared. A refactoring that should change no
result is checked by running this on the tree before and after it:

    git archive OLD | tar -x -C /tmp/old && git archive HEAD | tar -x -C /tmp/new
    .venv/bin/python benchmarks/config_fixture_metrics.py run /tmp/old /tmp/metrics_old
    .venv/bin/python benchmarks/config_fixture_metrics.py run /tmp/new /tmp/metrics_new
    .venv/bin/python benchmarks/config_fixture_metrics.py compare /tmp/metrics_old/results.json /tmp/metrics_new/results.json

Each tree's own package is imported (PYTHONPATH), with its own teacher cache and home folder, so the
configs' teacher configs are trained once per tree. Same machine, same seed: the metrics match exactly
when nothing that computes them changed.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time


def run(tree: str, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    folder = os.path.join(tree, "training_configs")
    configs = sorted(glob.glob(os.path.join(folder, "*.jsonnet"))) + sorted(glob.glob(os.path.join(folder, "teachers", "*.jsonnet")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGING_", "TEACHER_", "STRUCTKD_"))}
    env.update(PYTHONPATH=tree, STRUCTKD_EPOCHS="1", STRUCTKD_TEACHER_EPOCHS="1", STRUCTKD_SEED="1", OMP_NUM_THREADS="1",
               STRUCTKD_CACHE=os.path.join(out, "cache"), HOME=os.path.join(out, "home"))
    results = {}
    for config in configs:
        name = os.path.relpath(config, folder)
        target = os.path.join(out, name.replace(os.sep, "__").replace(".jsonnet", ""))
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "allennlp", "train", config, "-s", target, "--include-package",
                                 "allennlp_structkd"], cwd=tree, env=env, capture_output=True, text=True)
        metrics = {}
        if result.returncode == 0:
            with open(os.path.join(target, "metrics.json")) as handle:
                metrics = {key: value for key, value in json.load(handle).items()
                           if isinstance(value, (int, float)) and ("validation" in key or key.startswith("training_"))
                           and not any(word in key for word in ("duration", "memory", "epoch"))}
        results[name] = {"rc": result.returncode, "metrics": metrics}
        print(f"{name}: exit {result.returncode}, {time.time() - started:.0f} s", flush=True)
        with open(os.path.join(out, "results.json.tmp"), "w") as handle:
            json.dump(results, handle, indent=1, sort_keys=True)
        os.replace(os.path.join(out, "results.json.tmp"), os.path.join(out, "results.json"))


def compare(old_path: str, new_path: str) -> int:
    with open(old_path) as handle:
        old = json.load(handle)
    with open(new_path) as handle:
        new = json.load(handle)
    problems = [f"{name}: only in {'the old' if name in old else 'the new'} tree" for name in sorted(set(old) ^ set(new))]
    values = 0
    for name in sorted(set(old) & set(new)):
        if old[name]["rc"] or new[name]["rc"]:
            problems.append(f"{name}: exit {old[name]['rc']} -> {new[name]['rc']}")
            continue
        for key in sorted(set(old[name]["metrics"]) | set(new[name]["metrics"])):
            before, after = old[name]["metrics"].get(key), new[name]["metrics"].get(key)
            values += 1
            if before != after:
                problems.append(f"{name}: {key} {before} -> {after}")
    print(f"{len(set(old) & set(new))} configs, {values} metric values compared; {len(problems)} differences")
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("run", help="train every config of TREE into OUT")
    train.add_argument("tree")
    train.add_argument("out")
    check = commands.add_parser("compare", help="compare two results.json files; exit 1 on any difference")
    check.add_argument("old")
    check.add_argument("new")
    args = parser.parse_args()
    if args.command == "run":
        run(args.tree, args.out)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
