"""Child processes that do not outlive the process that started them.

A child forked for isolation (the extraction subprocess) or a Beam worker process would
otherwise live on with PPID 1 when its launcher is killed (SIGKILL cannot be caught, so the
launcher gets no chance to stop it), blocked on a pipe nobody reads. Linux's
``prctl(PR_SET_PDEATHSIG)`` asks the kernel to kill the child when its parent exits, whatever
ends the parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """The C library, loaded once (a forked child then calls ``prctl`` without ``dlopen``,
    which is not safe in the child of a process with threads)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def tie_to_parent(parent_pid: int, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits.

    Args:
        parent_pid: the pid the parent had when this process started: if the parent is already
            gone (this process was re-parented before the call), the process exits at once.
        sig: the signal sent.

    Returns:
        Whether the tie is in place (False off Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    if _libc().prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died before the tie was made
        os._exit(1)
    return True


_FORKS_TIED = False


def tie_forks_to_parent() -> bool:
    """From now on, tie every process forked from this one to the process that forked it, in
    the child at once (``os.register_at_fork``), before the child runs anything else.

    ``tie_forked_child`` ties the extraction child only when its DoFn is set up, which happens
    when the first document reaches it: a launcher killed between the fork and that moment left
    the child waiting on its task pipe with PPID 1. Tying at the fork closes that window. (Child
    processes started by ``subprocess`` exec at once without running Python's fork hooks; Beam's
    worker processes tie themselves in ``news_ingest.pipeline.worker``.) Registered once per
    process; returns whether the hooks are in place (False off Linux).
    """
    global _FORKS_TIED
    if not sys.platform.startswith("linux"):
        return False
    if not _FORKS_TIED:
        _libc()
        forker: list[int] = [os.getpid()]

        def before() -> None:
            forker[0] = os.getpid()

        os.register_at_fork(before=before, after_in_child=lambda: tie_to_parent(forker[0]))
        _FORKS_TIED = True
    return True


def tie_forked_child() -> bool:
    """In a multiprocessing child that runs a DoFn in its main thread (Beam's ``use_subprocess``
    pool): tie it to its parent and leave Ctrl-C to the parent, which decides for the whole run.
    A no-op elsewhere (the launcher, a Dask worker thread).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    # A terminal's Ctrl-C reaches the whole process group; the launcher's handler ends the run
    # and the child then dies with it, instead of printing its own KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return tie_to_parent(parent.pid)


def kill_children(sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every child process of this process (found in /proc; none elsewhere);
    return their pids. For a launcher that stops a run: Beam's worker threads wait for their
    worker processes, which would otherwise wait for the launcher to exit."""
    me = os.getpid()
    killed = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            if ppid == me:
                os.kill(int(name), sig)
                killed.append(int(name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to signal
    return killed
