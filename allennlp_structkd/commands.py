"""One way to run the ``allennlp`` command line from this project: in a subprocess, with this package included.

A process that is stopped (SIGTERM made an exception by :func:`exit_on_sigterm`, or Ctrl-C) stops the
``allennlp`` command it is waiting for, so that no training outlives the runner that started it.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Set

_RUNNING: Set[subprocess.Popen] = set()  # the commands this process is waiting for


def allennlp_command(verb: str, *arguments: str) -> List[str]:
    """``python -m allennlp VERB ARGUMENTS... --include-package allennlp_structkd`` (the current interpreter)."""
    return [sys.executable, "-m", "allennlp", verb, *arguments, "--include-package", "allennlp_structkd"]


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # it did not stop in time
        process.kill()
        process.wait()


def run_allennlp(verb: str, *arguments: str, env: Optional[Dict[str, str]] = None, log: Optional[str] = None,
                 append: bool = True) -> subprocess.CompletedProcess:
    """Run it; its output goes to ``log`` (appended, or overwritten) or is captured in ``.stdout``. If this process
    is stopped while it waits, the command is stopped too."""
    command = allennlp_command(verb, *arguments)
    handle = open(log, "a" if append else "w") if log is not None else None
    try:
        process = subprocess.Popen(command, env=env, stdout=handle or subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=handle is None)
        _RUNNING.add(process)
        try:
            output, _ = process.communicate()
        except BaseException:  # KeyboardInterrupt, SystemExit from SIGTERM: the training must not go on alone
            _stop(process)
            raise
        finally:
            _RUNNING.discard(process)
        return subprocess.CompletedProcess(command, process.returncode, output)
    finally:
        if handle is not None:
            handle.close()


def stop_running(grace: float = 10.0) -> None:
    """
    Stop every command this process is waiting for: SIGTERM, then SIGKILL after ``grace`` seconds. Safe in
    a signal handler: it uses no ``Popen`` method that takes the lock an interrupted ``Popen.wait`` holds.
    """
    import time

    running = {process.pid for process in _RUNNING}
    for pid in list(running):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:  # gone already
            running.discard(pid)
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        for pid in list(running):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    running.discard(pid)
            except ChildProcessError:
                running.discard(pid)
        time.sleep(0.05)
    for pid in running:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def exit_on_sigterm(at_once: bool = False) -> None:
    """
    SIGTERM raises SystemExit in this process (Python's default ends it at once, leaving its children
    behind), so that its clean-up runs; ``at_once`` (a worker process, whose pool would catch the
    exception as a job's and take the next job): stop the running commands and exit at once.
    """
    def stop(signum, frame):
        if at_once:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
            try:
                stop_running()
            finally:
                os._exit(128 + signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def die_with_parent(poll_seconds: float = 0.5) -> None:
    """
    In a worker process: when the process that started it dies (even by SIGKILL, which runs no clean-up), stop
    the commands this worker waits for and exit, instead of running on alone (reparented) and writing. A thread
    polls the parent's pid, which changes when the parent is gone; portable, unlike Linux's parent-death signal,
    which also fires when the *thread* that started the worker ends.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        try:
            stop_running(grace=5.0)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
