"""One offrec job at a time per project: an advisory ``flock`` on a lock file.

The kernel releases a ``flock`` when its process dies (even on SIGKILL), so a lock left by a
dead process is never an obstacle: the next run finds the file, takes the lock, and reports
that it took over from the dead holder. The file records who holds it, for the message a
refused run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from offrec.errors import LockedError

__all__ = ["JobLock", "LockInfo"]


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    command: str
    started_at: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"pid {self.pid} on {self.host} ({self.command}), started {started}"


class JobLock:
    """``with JobLock(path, command="nightly"):`` — raises :class:`LockedError` when held."""

    def __init__(self, path: Path, *, command: str, timeout_s: float = 0.0) -> None:
        self.path = Path(path)
        self.command = command
        self.timeout_s = timeout_s
        self._fh: IO[str] | None = None
        self.took_over: LockInfo | None = None

    def _read(self) -> LockInfo | None:
        try:
            data = json.loads(self.path.read_text() or "{}")
            return LockInfo(int(data["pid"]), str(data["host"]), str(data["command"]),
                            float(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._read()
                    fh.close()
                    who = holder.describe() if holder else "another process"
                    raise LockedError(
                        f"{self.path}: another offrec run holds the lock ({who}); "
                        "wait for it to finish, or stop it. Nothing was changed."
                    ) from None
                time.sleep(0.2)
        previous = self._read()
        if previous is not None and previous.pid != os.getpid():
            self.took_over = previous  # its process died without releasing: flock proves it
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started_at": time.time()}
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(info))
        fh.flush()
        os.fsync(fh.fileno())
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
