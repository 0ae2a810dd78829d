"""One writer per run directory: an exclusive lock taken before anything is written into a workdir.

The lock is `fcntl.flock` on `<workdir>/LOCK`, which the kernel releases when the holding process ends
however it ends (crash, SIGKILL), so a dead holder never blocks a rerun. The file records the holder
(host, process id, start time): a second run fails at once naming it, and a run that finds the record of
a process that is gone says it takes over from it. flock is reliable on local file systems; on network
file systems that do not support it, run one writer per workdir by hand.
"""

import datetime
import fcntl
import logging
import os
import pathlib
import socket

LOCK_FILE = "LOCK"


class WorkdirLockedError(RuntimeError):
    """Another live process holds the workdir."""


class WorkdirLock:
    """Context manager holding `<workdir>/LOCK` exclusively."""

    def __init__(self, workdir):
        self.path = pathlib.Path(workdir) / LOCK_FILE
        self._fd = None

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "an unknown process"
            os.close(fd)
            raise WorkdirLockedError(f"{self.path.parent} is in use by another run ({holder}); wait for it to "
                                     f"finish, stop it, or use another --workdir") from None
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if previous:
            logging.warning("%s: taking over the lock left by %s, which is no longer running", self.path, previous)
        record = (f"host {socket.gethostname()}, pid {os.getpid()}, since "
                  f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # an empty record: the workdir was left cleanly
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
