"""The model cache: one load per key, LRU eviction past the memory budget, never an
engine in use."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from genyard.providers.runtime import ModelCache


class Engine:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False


def loader(name: str, loads: list[str], delay: float = 0.0):  # type: ignore[no-untyped-def]
    def load() -> Engine:
        time.sleep(delay)
        loads.append(name)
        return Engine(name)

    return load


def close(engine: Engine) -> None:
    engine.closed = True


def test_concurrent_users_of_one_key_share_one_load() -> None:
    cache = ModelCache(budget_mb=1000)
    loads: list[str] = []

    def use() -> Engine:
        with cache.use("a", loader("a", loads, delay=0.2), memory_mb=10) as engine:
            return engine

    with ThreadPoolExecutor(8) as pool:
        engines = list(pool.map(lambda _: use(), range(8)))
    assert loads == ["a"]
    assert len({id(e) for e in engines}) == 1


def test_least_recently_used_idle_model_is_evicted_past_the_budget() -> None:
    cache = ModelCache(budget_mb=250)
    loads: list[str] = []
    engines = {}
    for name in ("a", "b"):
        with cache.use(name, loader(name, loads), memory_mb=100, close=close) as engine:
            engines[name] = engine
    with cache.use("a", loader("a", loads), memory_mb=100, close=close):
        pass  # a is now the most recently used
    with cache.use("c", loader("c", loads), memory_mb=100, close=close) as engine:
        engines["c"] = engine
    assert [m.key for m in cache.loaded()] == ["a", "c"]
    assert engines["b"].closed and not engines["a"].closed
    assert loads == ["a", "b", "c"]
    with cache.use("b", loader("b", loads), memory_mb=100, close=close):
        pass
    assert loads == ["a", "b", "c", "b"]  # b loaded again; a evicted this time
    assert [m.key for m in cache.loaded()] == ["c", "b"]


def test_a_model_in_use_is_never_evicted() -> None:
    cache = ModelCache(budget_mb=100)
    loads: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold_a() -> None:
        with cache.use("a", loader("a", loads), memory_mb=80, close=close) as engine:
            inside.set()
            release.wait(5)
            assert not engine.closed

    holder = threading.Thread(target=hold_a)
    holder.start()
    inside.wait(5)
    with cache.use("b", loader("b", loads), memory_mb=80, close=close) as b:
        # Over budget, but a is in use: both stay loaded for now.
        assert {m.key for m in cache.loaded()} == {"a", "b"}
        assert [m.in_use for m in cache.loaded()] == [True, True]
    assert not b.closed  # still over budget, but a is in use and b the most recent
    release.set()
    holder.join()
    # Once a is released (now the most recent) the cache is trimmed: b goes.
    assert [m.key for m in cache.loaded()] == ["a"]
    assert b.closed


def test_a_model_bigger_than_the_budget_still_loads_alone() -> None:
    cache = ModelCache(budget_mb=50)
    loads: list[str] = []
    with cache.use("small", loader("small", loads), memory_mb=10):
        pass
    with cache.use("big", loader("big", loads), memory_mb=500) as engine:
        assert engine.name == "big"
    assert [m.key for m in cache.loaded()] == ["big"]  # alone, and kept
    with cache.use("big", loader("big", loads), memory_mb=500):
        pass
    assert loads == ["small", "big"]
    assert cache.evict("nothing") is False
    assert cache.evict("big") is True and cache.loaded() == []


def test_a_failed_load_is_not_cached_and_can_be_retried() -> None:
    cache = ModelCache(budget_mb=100)
    attempts = []

    def flaky() -> Engine:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first load fails")
        return Engine("ok")

    try:
        with cache.use("x", flaky):
            pass
    except RuntimeError:
        pass
    with cache.use("x", flaky) as engine:
        assert engine.name == "ok"
    assert len(attempts) == 2
    assert cache._loading == {}
