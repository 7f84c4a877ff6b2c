"""Decoded samples kept in memory, so each file of a run is decoded once.

One :class:`SampleCache` serves the train, val and test datasets of one build. It holds what a
dataset's ``load`` returns, packed compactly (images as stored, uint8 / uint16 kept; class and
instance labels in the smallest integer type that holds them; see :mod:`pixelseg.data.compact`
and :mod:`pixelseg.data.instance.compact`), up to ``data.cache_fraction`` of the memory the
machine has *available* when the cache is made (``MemAvailable`` of ``/proc/meminfo``, else
``os.sysconf``). The check pass that decodes every sample before training fills it; without the
check, a sample is cached on first access. A sample that does not fit under the cap is decoded
again on every access: the cap is never exceeded, and nothing is ever evicted (training draws
images uniformly, so no eviction order would beat keeping the first ones).

DataLoader worker processes. Under ``fork`` (Linux) each worker starts with the parent's cache:
what the check pass filled before the loader started is shared copy-on-write — nothing writes
to a cached array, so its pages stay shared and a worker costs no extra copy of them. A worker
that meets a sample not yet cached caches it in its *own* memory; so that ``N`` workers filling
private copies cannot hold more than the cap together, each worker may add at most
``1 / N`` of the room that was left when it started. With a cache that is empty at fork time
(no check pass) and ``N`` workers, each worker thus caches up to ``cap / N`` of its own, and a
sample may be decoded once per worker. Under ``spawn`` (macOS, Windows) the dataset is pickled
into each worker: the entries are left out of the pickle (a copy per worker would multiply the
memory), so each worker starts empty and fills its share.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from typing import Any, Protocol

import torch.utils.data


class Cacheable(Protocol):
    """A cached value: it says how many bytes it holds."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the value's arrays."""
        ...


def available_memory() -> int:
    """Bytes of memory the machine has available now (0 when it cannot be read).

    ``MemAvailable`` of ``/proc/meminfo`` (what can be allocated without swapping, page cache
    included), else the free physical pages from ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


class SampleCache:
    """Decoded samples by key, never holding more than ``capacity`` bytes.

    Args:
        capacity: the cap in bytes.

    Attributes:
        capacity: the cap in bytes.
        nbytes: bytes held now (in this process).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, int(capacity))
        self.nbytes = 0
        self._entries: dict[Hashable, Any] = {}
        self._pid = os.getpid()
        self._start_bytes = 0

    @classmethod
    def from_fraction(cls, fraction: float, *, available: int | None = None) -> SampleCache | None:
        """A cache of ``fraction`` of the available memory, or ``None`` for ``fraction <= 0``.

        Args:
            fraction: ``data.cache_fraction``.
            available: bytes available (default: :func:`available_memory`, read now).
        """
        if fraction <= 0:
            return None
        memory = available_memory() if available is None else available
        return cls(int(fraction * memory))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Hashable]:
        """The keys cached (in this process)."""
        return iter(list(self._entries))

    def get(self, key: Hashable) -> Any | None:
        """The value cached under ``key``, or ``None``."""
        return self._entries.get(key)

    def room(self) -> int:
        """Bytes this process may still add (in a DataLoader worker: its share, see above)."""
        if os.getpid() != self._pid:
            # A forked worker: it inherited the parent's entries and may add only its share.
            self._pid, self._start_bytes = os.getpid(), self.nbytes
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self.capacity - self.nbytes
        share = (self.capacity - self._start_bytes) // max(1, info.num_workers)
        return share - (self.nbytes - self._start_bytes)

    def put(self, key: Hashable, value: Cacheable) -> bool:
        """Cache ``value`` under ``key`` if it fits under the cap; returns whether it is cached."""
        if key in self._entries:
            return True
        size = int(value.nbytes)
        if size > self.room():
            return False
        self._entries[key] = value
        self.nbytes += size
        return True

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into a spawned worker: no copy of the entries (see the module docstring).
        state = dict(self.__dict__)
        state["_entries"], state["nbytes"] = {}, 0
        state["_pid"], state["_start_bytes"] = -1, 0
        return state

    def __repr__(self) -> str:
        return (
            f"SampleCache({len(self)} entries, {self.nbytes / 2**20:.1f} of "
            f"{self.capacity / 2**20:.1f} MiB)"
        )
