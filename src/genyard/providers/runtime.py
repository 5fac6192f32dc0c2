"""Loaded models, shared by every provider in a process: lazy, warm, and evicted
least-recently-used when a memory budget is exceeded.

A provider keeps its loaded engines here instead of in its own dict::

    from genyard.providers.runtime import model_cache

    with model_cache().use(f"piper:{voice}", load, memory_mb=model.limits.memory_mb) as engine:
        ...  # engine stays loaded (and is never evicted) while in use

``load`` runs once per key, even when several threads ask at once. After a load, idle
entries are evicted, least recently used first, until the total of ``memory_mb`` fits
``GENYARD_MODEL_MEMORY_MB``; an entry in use is never evicted, nor the most recently
used one (a model bigger than the budget still loads, and stays, alone). ``close``
(optional) is called on eviction; otherwise the engine is dropped and freed when its
last reference goes.

Engines read thread settings (``OMP_NUM_THREADS``...) when their library is first
imported: set them in ``load``, before the import (:func:`set_thread_env`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from genyard.domain.catalog import ModelEntry

if TYPE_CHECKING:
    from genyard.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BUDGET_MB = 4096


@dataclass(slots=True)
class _Entry:
    engine: Any
    memory_mb: int
    close: Callable[[Any], None] | None
    loaded_at: float
    load_seconds: float
    users: int = 0


@dataclass(frozen=True, slots=True)
class LoadedModel:
    key: str
    memory_mb: int
    load_seconds: float
    in_use: bool


class ModelCache:
    def __init__(self, budget_mb: int = DEFAULT_BUDGET_MB) -> None:
        self.budget_mb = budget_mb
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recent first
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    @contextmanager
    def use(
        self,
        key: str,
        load: Callable[[], T],
        *,
        memory_mb: int | None = None,
        close: Callable[[T], None] | None = None,
    ) -> Iterator[T]:
        """The engine under ``key``, loaded if needed, pinned while the block runs."""
        entry = self._acquire(key, load, memory_mb or 0, close)
        try:
            yield entry.engine
        finally:
            with self._lock:
                entry.users -= 1
                if key in self._entries:
                    self._entries.move_to_end(key)
                victims = self._evict_locked()
            for victim_key, victim in victims:
                self._close(victim_key, victim)

    def warm(
        self,
        key: str,
        load: Callable[[], Any],
        *,
        memory_mb: int | None = None,
        close: Callable[[Any], None] | None = None,
    ) -> None:
        """Load ahead of time (``genyard models warm``)."""
        with self.use(key, load, memory_mb=memory_mb, close=close):
            pass

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return [
                LoadedModel(key, e.memory_mb, e.load_seconds, e.users > 0)
                for key, e in self._entries.items()
            ]

    def evict(self, key: str) -> bool:
        """Drop an idle entry now; False when absent or in use."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.users:
                return False
            del self._entries[key]
        self._close(key, entry)
        return True

    def _acquire(
        self, key: str, load: Callable[[], Any], memory_mb: int, close: Callable[[Any], None] | None
    ) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.users += 1
                self._entries.move_to_end(key)
                return entry
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per key; others wait for it
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.users += 1
                    self._entries.move_to_end(key)
                    return entry
            started = time.monotonic()
            try:
                engine = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            entry = _Entry(
                engine, memory_mb, close, time.time(), time.monotonic() - started, users=1
            )
            with self._lock:  # the entry is in place before the loading lock goes
                self._entries[key] = entry
                self._loading.pop(key, None)
                victims = self._evict_locked()
            log.info("loaded %s in %.2f s (%d MB)", key, entry.load_seconds, memory_mb)
        for victim_key, victim in victims:
            self._close(victim_key, victim)
        return entry

    def _evict_locked(self) -> list[tuple[str, _Entry]]:
        total = sum(e.memory_mb for e in self._entries.values())
        victims = []
        for key in list(self._entries)[:-1]:  # the most recently used one stays
            if total <= self.budget_mb:
                break
            entry = self._entries[key]
            if entry.users:
                continue
            del self._entries[key]
            total -= entry.memory_mb
            victims.append((key, entry))
        return victims

    def _close(self, key: str, entry: _Entry) -> None:
        log.info("evicted %s (%d MB) to stay within the model memory budget", key, entry.memory_mb)
        if entry.close is not None:
            try:
                entry.close(entry.engine)
            except Exception:
                log.exception("closing %s failed", key)


_cache = ModelCache()


def model_cache() -> ModelCache:
    """The process's model cache (its budget is set from settings at start-up)."""
    return _cache


def configure(budget_mb: int) -> None:
    _cache.budget_mb = budget_mb


def set_thread_env(threads: int) -> None:
    """Thread counts for engines that read them at import (OpenMP, MKL, OpenBLAS).
    Call before the engine's first import; values the operator set are kept."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))


@runtime_checkable
class WarmableProvider(Protocol):
    """A provider that can load a model ahead of its first run."""

    def warm(self, model: ModelEntry) -> None: ...


def warm_model(registry: ProviderRegistry, entry: ModelEntry) -> float | None:
    """Load ``entry``'s model now (``genyard models warm``, GENYARD_WARM_MODELS): the
    seconds it took, or None when its provider has nothing to load ahead of time.
    Raises RuntimeError with the reason and the fix when the model cannot run here."""
    availability = registry.availability(entry.provider, entry)
    provider = registry.get(entry.provider)
    if provider is None or not availability.available:
        raise RuntimeError(f"{availability.reason} (fix: {availability.fix})")
    if not isinstance(provider, WarmableProvider):
        return None
    started = time.monotonic()
    provider.warm(entry)
    return time.monotonic() - started
