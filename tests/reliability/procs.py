"""Process helpers for the signal tests: children and survivors of a launcher, from /proc."""

from __future__ import annotations

import os
import time


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for other in _pids():
        st = _stat(other)
        if st and st[1] == pid and st[0] != "Z":
            found.append(other)
    return found


def survivors(pgid: int, also: list[int], limit: float = 20.0) -> list[int]:
    """Live processes of process group ``pgid`` (or among ``also``), after waiting up to
    ``limit`` seconds for them to go (a killed child takes a moment to exit)."""
    deadline = time.monotonic() + limit
    while True:
        alive = []
        for other in set(_pids()) | set(also):
            st = _stat(other)
            # A child seen mid-run that outlives the launcher is re-parented to init; a pid of
            # ``also`` with a live parent of its own was reused by another process (pid_max is
            # often 32768, and the suite's other workers start many processes).
            if st and st[0] != "Z" and (st[2] == pgid or (other in also and st[1] == 1)):
                alive.append(other)
        if not alive or time.monotonic() > deadline:
            for pid in alive:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        print("SURVIVOR", pid, fh.read().replace(bytes(1), b" ")[:400])
                except OSError:
                    pass
            return sorted(alive)
        time.sleep(0.2)


def wait_for(predicate, limit: float = 120.0, proc=None) -> bool:  # type: ignore[no-untyped-def]
    """Wait (bounded) until ``predicate()`` holds or ``proc`` ends; return whether it holds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False
