"""Worker processes die with the process that started them, even when it is killed with SIGKILL (which runs no
clean-up), and a suite is run by one runner at a time."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from allennlp_structkd.paths import REPO


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            state = next(line for line in handle if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return False
    return "zombie" not in state and "(Z)" not in state


def _wait_for(path, lines, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(path):
            found = open(path).read().split()
            if len(found) >= lines:
                return [int(pid) for pid in found]
        time.sleep(0.1)
    raise AssertionError(f"the script did not start its workers within {timeout} s")


def _kill_and_check(parent, pids, timeout=20):
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:  # never leave them behind, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} outlived their parent's SIGKILL by {timeout} s"


ANNOTATE_POOL = """
import multiprocessing, os, sys, time

def job(path):
    with open(path, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(300)

if __name__ == "__main__":
    from allennlp_structkd import annotate
    context = multiprocessing.get_context("spawn")
    lock = context.RLock()
    with context.Pool(2, initializer=annotate._worker_started, initargs=(lock,)) as pool:
        pool.map_async(job, [sys.argv[1]] * 2, chunksize=1)
        time.sleep(300)
"""

RUNNER_POOL = """
import concurrent.futures, os, subprocess, sys, time

def job(path):
    from allennlp_structkd import commands
    process = subprocess.Popen(["sleep", "300"])  # stands for the `allennlp train` a worker waits for
    commands._RUNNING.add(process)
    with open(path, "a") as handle:
        handle.write(f"{os.getpid()}\\n{process.pid}\\n")
    process.wait()

if __name__ == "__main__":
    from experiments import runner
    with concurrent.futures.ProcessPoolExecutor(2, initializer=runner._worker_started) as pool:
        for _ in range(2):
            pool.submit(job, sys.argv[1])
        time.sleep(300)
"""


@pytest.mark.parametrize("script, processes", [(ANNOTATE_POOL, 2), (RUNNER_POOL, 4)], ids=["annotate", "runner"])
def test_workers_and_their_commands_die_with_a_parent_killed_by_sigkill(tmp_path, script, processes):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    pids = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, str(path), str(pids)], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = _wait_for(pids, processes)
    except AssertionError:
        parent.kill()
        raise
    assert all(_alive(pid) for pid in workers)
    _kill_and_check(parent, workers)


def test_a_second_runner_on_a_suite_is_refused_naming_the_first(tmp_path):
    from experiments.runner import SuiteLock

    code = ("import sys, time; from experiments.runner import SuiteLock\n"
            "with SuiteLock(sys.argv[1], 'fake'):\n    print('held', flush=True); time.sleep(300)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "suite")], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit, match=rf"suite fake is being run already, by pid {holder.pid}, since"):
            with SuiteLock(str(tmp_path / "suite"), "fake"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with SuiteLock(str(tmp_path / "suite"), "fake"):  # a dead holder holds nothing
        pass
