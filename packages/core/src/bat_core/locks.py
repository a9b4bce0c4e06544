"""One writer at a time per representation in a ``--derived`` folder (shards of one run excepted).

A lock is a JSON file beside the manifest naming its holder (pid, host, command, start,
heartbeat). A second writer is refused with a message that says who holds it. A lock is
stale, and taken over, when its pid is gone on this host, or, held from another host, when its
heartbeat (refreshed every ``HEARTBEAT_SECONDS`` by a background thread) is older than
``STALE_SECONDS``: a killed run never blocks the next one, a suspended one keeps its lock.

Shards ``I/N`` of one run each hold their own lock; they exclude an unsharded writer and
shards of another N, not each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bat_core.errors import LockedError

HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 120.0
_HELD: set[str] = set()  # lock files held by this process (its own pid alone does not tell a live one from a leftover)


def writer_name(shard: tuple[int, int] | None) -> str:
    return "main" if shard is None else f"shard-{shard[0]}-of-{shard[1]}"


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """A short critical section between processes on one machine (flock); a no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: locks below still catch a second writer, without this guard against a race
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    def __init__(self, directory: Path, representation: str, shard: tuple[int, int] | None = None):
        self.directory = directory
        self.representation = representation
        self.shard = shard
        self.path = directory / f"{representation}.{writer_name(shard)}.lock"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._record: dict = {}

    def acquire(self) -> None:
        with exclusive(self.directory / f".{self.representation}.locks"):
            for holder_path in sorted(self.directory.glob(f"{self.representation}.*.lock")):
                holder = _read(holder_path)
                if holder is None or _stale(holder, holder_path):
                    holder_path.unlink(missing_ok=True)
                    continue
                if self._compatible(holder_path):
                    continue
                raise LockedError(
                    f"{self.representation} in {self.directory.parent} is being written by pid {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('started')} ({holder.get('command', '?')}); wait for it to "
                    f"finish, or if that process is gone delete {holder_path}")
            self._record = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
                            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "heartbeat": time.time()}
            self._write()
            _HELD.add(str(self.path))
        self._thread = threading.Thread(target=self._beat, name="bat-lock-heartbeat", daemon=True)
        self._thread.start()

    def _compatible(self, other: Path) -> bool:
        """Another shard of the same N is no conflict; anything else writing this representation is."""
        if self.shard is None:
            return False
        mine = f".{writer_name(self.shard)}.lock"
        name = other.name.removeprefix(f"{self.representation}.")
        if other.name.endswith(mine):
            return False
        return name.startswith("shard-") and name.endswith(f"-of-{self.shard[1]}.lock")

    def _write(self) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self._record))
        os.replace(temporary, self.path)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            holder = _read(self.path)
            if holder is None or (holder.get("pid"), holder.get("host")) != (self._record["pid"], self._record["host"]):
                return  # taken over (this process looked dead from another host): never write over the new holder
            self._record["heartbeat"] = time.time()
            with contextlib.suppress(OSError):
                self._write()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        holder = _read(self.path)
        if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        _HELD.discard(str(self.path))


def live_writers(directory: Path, representation: str) -> list[str]:
    """Writer names (``main``, ``shard-I-of-N``) holding a live lock on ``representation``."""
    names = []
    for path in directory.glob(f"{representation}.*.lock"):
        holder = _read(path)
        if holder is not None and not _stale(holder, path):
            names.append(path.name.removeprefix(f"{representation}.").removesuffix(".lock"))
    return names


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stale(holder: dict, path: Path) -> bool:
    """On this host the holder's process decides (a suspended run is alive, whatever its heartbeat says);
    a holder on another host is judged by its heartbeat."""
    if holder.get("host") == socket.gethostname():
        pid = int(holder.get("pid", -1))
        return str(path) not in _HELD if pid == os.getpid() else not pid_alive(pid)
    return time.time() - float(holder.get("heartbeat", 0)) > STALE_SECONDS


def host_tag() -> str:
    """A short name of this host for temporary files: a writer only cleans up what a dead process of
    its own host left (a shard on another machine may be writing beside it)."""
    import hashlib

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
